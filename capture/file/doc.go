// Package file provides frame Sources that read from disk instead of a
// camera, for demos, benchmarks and tests:
//
//   - Dir: a directory of JPEG/PNG images, in name order;
//   - MJPEG: an MJPEG stream file (concatenated JPEGs, as written by
//     "ffmpeg -f mjpeg" or saved from an HTTP multipart stream), split on
//     JPEG markers so corrupt or truncated frames are skipped and counted;
//   - FFmpeg: any video ffmpeg can read, decoded by an ffmpeg subprocess
//     into PPM frames (a clear error when ffmpeg is not installed).
//
// All of them pace frames at the file's rate or a configured fps, or run as
// fast as possible (capture.FPSMax) for benchmarks, and can loop.
//
// Dependencies: capture and the standard library (ffmpeg is an optional
// external program). No cgo, no facegate/infer, no TensorFlow.
package file
