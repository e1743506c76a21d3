package infer

import "os"

// TensorFlow's C++ runtime logs every model load at INFO to stderr. Unless the
// operator asked for it (TF_CPP_MIN_LOG_LEVEL set), keep only its errors so
// the daemon's structured log stays readable. With cgo, os.Setenv also sets
// the C environment the library reads when it first logs.
func init() {
	if _, ok := os.LookupEnv("TF_CPP_MIN_LOG_LEVEL"); !ok {
		os.Setenv("TF_CPP_MIN_LOG_LEVEL", "2")
	}
}
