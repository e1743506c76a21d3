// Command democlip makes the demo's inputs (make run, scripts/demo.sh) from
// the two photos in testdata/, in Go so that the demo needs no ffmpeg: a
// 640x480 MJPEG clip at 10 fps, four seconds of the coffee cup, then eight
// of astronaut Eileen Collins with a slow zoom, and a mirrored copy of her
// photo to enrol her with.
//
// It uses the standard library and golang.org/x/image only: never cgo,
// TensorFlow or facegate's own packages.
package main
