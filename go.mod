module github.com/facegate/facegate

go 1.26

require (
	github.com/wamuir/graft v0.10.0
	google.golang.org/protobuf v1.34.2
)
