// Package v4l2 is the camera Source: Video4Linux2 capture devices through
// github.com/blackjack/webcam (pure Go ioctls, no cgo).
//
// It checks the node's own capabilities (QueryCaps), lists the device's
// formats and frame sizes, chooses one from the configuration (Choose),
// reads back what the driver really set (QueryFormat: size, bytes per
// line), streams with a few mmap buffers, copies every
// frame out of the driver buffer before returning it (webcam's ReadFrame
// and GetFrame return driver memory that the next dequeue overwrites),
// treats *webcam.Timeout as "no frame yet", and survives an unplug: on
// ENODEV/EIO it closes the device, reports the outage, and reopens with
// exponential backoff until the device returns, keeping sequence numbers
// increasing.
//
// Everything device-specific goes through the small Device interface, so the
// logic is unit-tested with an in-memory fake (fake_test.go); the real
// driver is exercised in a qemu guest running the vivid virtual driver
// (vivid_test.go).
//
// Dependencies: capture, github.com/blackjack/webcam, golang.org/x/sys/unix,
// the standard library. No cgo, no facegate/infer, no TensorFlow.
package v4l2
