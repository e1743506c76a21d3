// Package capture brings camera frames into facegate.
//
// It defines the Frame type (sequence number, timestamp, size, pixel format
// and either the raw bytes from the camera or a decoded packed-RGB image),
// the Source interface every frame producer implements, the decoders the
// pipeline needs (MJPEG/JPEG through Go's image/jpeg, YUYV/UYVY/RGB24/grey to
// packed RGB, and a cheap area downscale for the detector), the Latest
// latest-frame stage that guarantees a slow consumer never sees stale queued
// frames, and the Metrics the daemon publishes (fps in/out, dropped and
// corrupt frames, decode time, reconnects).
//
// Concrete sources live in subpackages: capture/v4l2 (cameras through
// github.com/blackjack/webcam) and capture/file (image directories, MJPEG
// stream files, any video through an ffmpeg subprocess); capture/sources
// picks one from the configuration.
//
// Dependencies: the standard library only. capture and its subpackages must
// not use cgo and must not import facegate/infer, TensorFlow or
// github.com/wamuir/graft (internal/archtest enforces this); frames reach
// the detector as plain packed RGB bytes.
package capture
