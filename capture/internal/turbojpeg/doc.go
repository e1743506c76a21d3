// Package turbojpeg is an optional MJPEG decoder using libjpeg-turbo's
// TurboJPEG API through cgo. It is compiled only with the build tag
// "turbojpeg" (and cgo); without the tag this package is empty and
// facegate's capture path stays pure Go (image/jpeg). See
// docs/benchmarks.md for why it is not the default.
//
// Build: apt-get install libturbojpeg0-dev; go test -tags turbojpeg.
//
// Dependencies: libturbojpeg (C), the standard library. It must not import
// facegate/infer or TensorFlow.
package turbojpeg
