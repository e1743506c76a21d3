package v4l2

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/blackjack/webcam"
)

// Device is the part of *webcam.Webcam the source uses; tests substitute
// an in-memory fake.
type Device interface {
	GetSupportedFormats() map[webcam.PixelFormat]string
	GetSupportedFrameSizes(webcam.PixelFormat) []webcam.FrameSize
	SetImageFormat(f webcam.PixelFormat, width, height uint32) (webcam.PixelFormat, uint32, uint32, error)
	SetFramerate(fps float32) error
	SetBufferCount(n uint32) error
	StartStreaming() error
	// WaitForFrame waits up to timeout seconds; *webcam.Timeout when none.
	WaitForFrame(timeout uint32) error
	// GetFrame returns driver memory valid until ReleaseFrame(index).
	GetFrame() ([]byte, uint32, error)
	ReleaseFrame(index uint32) error
	Close() error
}

// Opener opens a device node.
type Opener func(path string) (Device, error)

// OpenWebcam is the real Opener. Its errors name the device and, for
// permission problems, the video group.
func OpenWebcam(path string) (Device, error) {
	caps, err := QueryCaps(path)
	if err != nil {
		return nil, openError(path, err)
	}
	if err := caps.CaptureError(); err != nil {
		return nil, fmt.Errorf("camera %s: %w: %v", path, errNotCapture, err)
	}
	cam, err := webcam.Open(path)
	if err != nil {
		return nil, openError(path, err)
	}
	return cam, nil
}

// openError turns webcam.Open's bare errors into actionable ones.
func openError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("camera %s: no such device (is the camera plugged in? ls /dev/video*): %w", path, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("camera %s: permission denied: add the user running facegate to the 'video' group (usermod -aG video USER; systemd: SupplementaryGroups=video) or check ls -l %s: %w", path, path, err)
	case errors.Is(err, syscall.ENOTTY), errors.Is(err, syscall.EINVAL):
		return fmt.Errorf("camera %s: not a V4L2 device: %w", path, err)
	case errors.Is(err, syscall.ENODEV), errors.Is(err, syscall.ENXIO):
		return fmt.Errorf("camera %s: device is gone (unplugged?): %w", path, err)
	}
	msg := err.Error()
	if msg == "Not a video capture device" || msg == "Device does not support the streaming I/O method" {
		return fmt.Errorf("camera %s: %s (is it the metadata node of a UVC camera? try the other /dev/video*): %w", path, lower(msg), errNotCapture)
	}
	if st, serr := os.Stat(path); serr == nil && st.Mode()&fs.ModeCharDevice == 0 {
		return fmt.Errorf("camera %s: not a character device: %w", path, err)
	}
	return fmt.Errorf("camera %s: %w", path, err)
}

var errNotCapture = errors.New("not a video capture device")

func lower(s string) string {
	if s == "" {
		return s
	}
	b := []byte(s)
	if b[0] >= 'A' && b[0] <= 'Z' {
		b[0] += 'a' - 'A'
	}
	return string(b)
}

// gone reports whether err means the device disappeared (unplug, driver
// unbound or removed).
func gone(err error) bool {
	return errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.EIO) ||
		errors.Is(err, syscall.ENXIO) || errors.Is(err, syscall.ENOENT) ||
		errors.Is(err, syscall.EBADF)
}
