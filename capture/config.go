package capture

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config selects and tunes a frame source. ConfigFromEnv reads it from the
// FACEGATE_CAMERA_* environment variables; hardware paths are
// configuration, never hard-coded.
type Config struct {
	// Device is a V4L2 device node (/dev/video0), a directory of images,
	// an MJPEG stream file (.mjpeg/.mjpg) or any video file ffmpeg reads.
	// FACEGATE_CAMERA_DEVICE (or FACEGATE_CAMERA), default /dev/video0.
	Device string
	// Format is "auto", "MJPEG" or "YUYV" (FACEGATE_CAMERA_FORMAT; also
	// accepted: UYVY, RGB3, GREY). auto: MJPEG at the largest size <=
	// Width×Height, else YUYV.
	Format string
	// Width and Height bound the capture size (FACEGATE_CAMERA_SIZE,
	// "1280x720" by default, or FACEGATE_CAMERA_WIDTH/_HEIGHT).
	Width, Height int
	// FPS asks the camera for this rate and paces files at it
	// (FACEGATE_CAMERA_FPS). 0 keeps the driver's or file's own rate;
	// "max" (stored as -1) reads files as fast as possible (benchmarks).
	FPS float64
	// Buffers is the number of mmap driver buffers (FACEGATE_CAMERA_BUFFERS,
	// default 4; few buffers keep latency low).
	Buffers int
	// Loop restarts files at the end (FACEGATE_CAMERA_LOOP, for demos).
	Loop bool
	// ReconnectMax caps the backoff between reopen attempts after the
	// camera disappears (FACEGATE_CAMERA_RECONNECT_MAX, default 5s).
	ReconnectMax time.Duration
}

// FPSMax is the Config.FPS value for "as fast as possible".
const FPSMax = -1

// DefaultConfig is what ConfigFromEnv starts from.
func DefaultConfig() Config {
	return Config{
		Device:       "/dev/video0",
		Format:       "auto",
		Width:        1280,
		Height:       720,
		Buffers:      4,
		ReconnectMax: 5 * time.Second,
	}
}

// ConfigFromEnv reads FACEGATE_CAMERA_* through lookup (os.LookupEnv when
// nil) over DefaultConfig and validates the result.
func ConfigFromEnv(lookup func(string) (string, bool)) (Config, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	c := DefaultConfig()
	get := func(k string) (string, bool) {
		v, ok := lookup(k)
		v = strings.TrimSpace(v)
		return v, ok && v != ""
	}
	// FACEGATE_CAMERA is the daemon's name for the same setting.
	for _, k := range []string{"FACEGATE_CAMERA", "FACEGATE_CAMERA_DEVICE"} {
		if v, ok := get(k); ok {
			c.Device = v
		}
	}
	if v, ok := get("FACEGATE_CAMERA_FORMAT"); ok {
		c.Format = v
	}
	if v, ok := get("FACEGATE_CAMERA_SIZE"); ok {
		w, h, err := ParseSize(v)
		if err != nil {
			return c, fmt.Errorf("FACEGATE_CAMERA_SIZE: %w", err)
		}
		c.Width, c.Height = w, h
	}
	for k, dst := range map[string]*int{"FACEGATE_CAMERA_WIDTH": &c.Width, "FACEGATE_CAMERA_HEIGHT": &c.Height} {
		if v, ok := get(k); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				return c, fmt.Errorf("%s: %q is not a number", k, v)
			}
			*dst = n
		}
	}
	if v, ok := get("FACEGATE_CAMERA_FPS"); ok {
		if strings.EqualFold(v, "max") {
			c.FPS = FPSMax
		} else {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 {
				return c, fmt.Errorf("FACEGATE_CAMERA_FPS: %q is not a rate >= 0 or \"max\"", v)
			}
			c.FPS = f
		}
	}
	if v, ok := get("FACEGATE_CAMERA_BUFFERS"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return c, fmt.Errorf("FACEGATE_CAMERA_BUFFERS: %q: %w", v, err)
		}
		c.Buffers = n
	}
	if v, ok := get("FACEGATE_CAMERA_LOOP"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("FACEGATE_CAMERA_LOOP: %q: %w", v, err)
		}
		c.Loop = b
	}
	if v, ok := get("FACEGATE_CAMERA_RECONNECT_MAX"); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			return c, fmt.Errorf("FACEGATE_CAMERA_RECONNECT_MAX: %w", err)
		}
		c.ReconnectMax = d
	}
	return c, c.Validate()
}

// Validate checks ranges and normalises Format to "auto", "MJPEG" or "YUYV".
func (c *Config) Validate() error {
	switch strings.ToUpper(c.Format) {
	case "", "AUTO":
		c.Format = "auto"
	case "MJPEG", "MJPG":
		c.Format = "MJPEG"
	case "YUYV", "YUY2":
		c.Format = "YUYV"
	case "UYVY", "RGB3", "GREY":
		// Other uncompressed formats the decoder understands (tests,
		// unusual cameras).
		c.Format = strings.ToUpper(c.Format)
	default:
		return fmt.Errorf("camera format %q: want MJPEG, YUYV or auto (or UYVY, RGB3, GREY)", c.Format)
	}
	if c.Device == "" {
		return fmt.Errorf("camera device is empty")
	}
	if c.Width <= 0 || c.Height <= 0 || c.Width > 16384 || c.Height > 16384 {
		return fmt.Errorf("camera size %dx%d out of range", c.Width, c.Height)
	}
	if c.FPS < 0 && c.FPS != FPSMax || c.FPS > 1000 {
		return fmt.Errorf("camera fps %g out of range", c.FPS)
	}
	if c.Buffers < 2 || c.Buffers > 32 {
		return fmt.Errorf("camera buffers %d: want 2..32", c.Buffers)
	}
	if c.ReconnectMax <= 0 {
		c.ReconnectMax = 5 * time.Second
	}
	return nil
}

// ParseSize parses "WIDTHxHEIGHT".
func ParseSize(s string) (w, h int, err error) {
	a, b, ok := strings.Cut(strings.ToLower(strings.TrimSpace(s)), "x")
	if ok {
		w, err = strconv.Atoi(a)
		if err == nil {
			h, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || w <= 0 || h <= 0 {
		return 0, 0, fmt.Errorf("size %q: want WIDTHxHEIGHT, e.g. 1280x720", s)
	}
	return w, h, nil
}
