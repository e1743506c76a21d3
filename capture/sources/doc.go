// Package sources opens the capture.Source a capture.Config describes:
// a V4L2 device node, a directory of images, an MJPEG stream file, or any
// other video file through ffmpeg. It is the one place that knows every
// source type, so the daemon needs a single call.
//
// Dependencies: capture, capture/v4l2, capture/file, the standard library.
// No cgo, no facegate/infer, no TensorFlow.
package sources
