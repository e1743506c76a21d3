package v4l2

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"time"

	"github.com/blackjack/webcam"

	"github.com/facegate/facegate/capture"
)

// Options tunes a Source beyond capture.Config.
type Options struct {
	// Metrics receives FrameIn, Timeout, Outage and Reconnected counts.
	Metrics *capture.Metrics
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Open replaces OpenWebcam (tests).
	Open Opener
	// QueryFormat reads back the negotiated format (default QueryFormat;
	// when it fails, as for fake devices, the requested mode is kept).
	QueryFormat func(path string) (Format, error)
	// WaitTimeout is how long one WaitForFrame may block (whole seconds,
	// default 1s); it bounds how quickly Next notices ctx cancellation.
	WaitTimeout time.Duration
	// StallTimeout: a streaming device that delivers nothing for this long
	// is treated as gone and reopened (default 10s).
	StallTimeout time.Duration
	// ReconnectMin is the first reopen delay after an outage (default
	// 100ms); it doubles up to Config.ReconnectMax.
	ReconnectMin time.Duration
}

// Source captures frames from a V4L2 device.
type Source struct {
	cfg  capture.Config
	opts Options
	log  *slog.Logger

	dev     Device
	mode    Mode
	stride  int // bytes per line when the driver pads rows, else 0
	formats []FormatInfo
	seq     uint64
	closed  bool

	lastFrame time.Time
	downSince time.Time
	backoff   time.Duration
	attempts  int
}

// Open opens and starts streaming cfg.Device. It fails with a clear error
// if the device is missing, not a capture device, not accessible, or offers
// no suitable format/size; once streaming, outages are survived instead.
func Open(cfg capture.Config, opts Options) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Open == nil {
		opts.Open = OpenWebcam
	}
	if opts.QueryFormat == nil {
		opts.QueryFormat = QueryFormat
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.WaitTimeout < time.Second {
		opts.WaitTimeout = time.Second
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = 10 * time.Second
	}
	if opts.ReconnectMin <= 0 {
		opts.ReconnectMin = 100 * time.Millisecond
	}
	s := &Source{cfg: cfg, opts: opts, log: opts.Logger.With("device", cfg.Device)}
	if err := s.connect(); err != nil {
		return nil, err
	}
	return s, nil
}

// Mode is the negotiated format and size (of the current connection).
func (s *Source) Mode() Mode { return s.mode }

// Formats lists what the device offered when it was (re)opened.
func (s *Source) Formats() []FormatInfo { return s.formats }

// connect opens the device, negotiates the mode and starts streaming.
func (s *Source) connect() error {
	dev, err := s.opts.Open(s.cfg.Device)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			dev.Close()
		}
	}()
	formats := ListFormats(dev)
	mode, err := Choose(formats, s.cfg.Format, s.cfg.Width, s.cfg.Height)
	if err != nil {
		return fmt.Errorf("camera %s: %w", s.cfg.Device, err)
	}
	f, w, h, err := dev.SetImageFormat(webcam.PixelFormat(mode.Format), uint32(mode.Width), uint32(mode.Height))
	if errors.Is(err, syscall.EBUSY) {
		return fmt.Errorf("camera %s: busy, another program is streaming from it: %w", s.cfg.Device, err)
	}
	if err != nil {
		return fmt.Errorf("camera %s: set format %s: %w", s.cfg.Device, mode, err)
	}
	got := Mode{Format: capture.PixelFormat(f), Width: int(w), Height: int(h)}
	stride := 0
	if s.opts.QueryFormat != nil {
		// What the driver actually chose (webcam reports the request).
		if af, err := s.opts.QueryFormat(s.cfg.Device); err != nil {
			s.log.Debug("camera: cannot read back the format", "err", err)
		} else {
			if af.Width != got.Width || af.Height != got.Height {
				s.log.Warn("camera: driver adjusted the frame size", "asked", got.String(), "width", af.Width, "height", af.Height)
				got.Width, got.Height = af.Width, af.Height
			}
			if row := got.Format.FrameSize(got.Width, 1); row > 0 && af.BytesPerLine > row {
				stride = af.BytesPerLine
			}
		}
	}
	if got.Format != mode.Format {
		return fmt.Errorf("camera %s: asked for %s, driver chose %s", s.cfg.Device, mode, got)
	}
	if !got.Format.Decodable() {
		return fmt.Errorf("camera %s: driver format %s cannot be decoded", s.cfg.Device, got)
	}
	if s.cfg.FPS > 0 {
		if err := dev.SetFramerate(float32(s.cfg.FPS)); err != nil {
			// Not fatal: many drivers only offer fixed rates.
			s.log.Warn("camera: cannot set frame rate", "fps", s.cfg.FPS, "err", err)
		}
	}
	if err := dev.SetBufferCount(uint32(s.cfg.Buffers)); err != nil {
		return fmt.Errorf("camera %s: buffers: %w", s.cfg.Device, err)
	}
	if err := dev.StartStreaming(); err != nil {
		if errors.Is(err, syscall.EBUSY) || strings.Contains(err.Error(), "device or resource busy") {
			return fmt.Errorf("camera %s: busy, another program is streaming from it: %w", s.cfg.Device, err)
		}
		return fmt.Errorf("camera %s: start streaming %s: %w", s.cfg.Device, got, err)
	}
	ok = true
	s.dev, s.mode, s.formats, s.stride = dev, got, formats, stride
	s.lastFrame = time.Now()
	s.log.Info("camera: streaming", "mode", got.String(), "buffers", s.cfg.Buffers)
	return nil
}

// Next returns the next frame, copied out of the driver buffer. While the
// device is gone it keeps retrying (with backoff) until ctx is done.
func (s *Source) Next(ctx context.Context) (capture.Frame, error) {
	for {
		if s.closed {
			return capture.Frame{}, capture.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return capture.Frame{}, err
		}
		if s.dev == nil {
			if err := s.reconnect(ctx); err != nil {
				return capture.Frame{}, err
			}
			continue
		}
		f, err := s.read()
		if err == nil {
			return f, nil
		}
		if errors.Is(err, errNoFrame) {
			if time.Since(s.lastFrame) > s.opts.StallTimeout {
				s.lost(fmt.Errorf("no frame for %s", s.opts.StallTimeout))
			}
			continue
		}
		if gone(err) {
			s.lost(err)
			continue
		}
		return capture.Frame{}, fmt.Errorf("camera %s: %w", s.cfg.Device, err)
	}
}

var errNoFrame = errors.New("no frame yet")

// read waits for and copies one frame.
func (s *Source) read() (capture.Frame, error) {
	err := s.dev.WaitForFrame(uint32(s.opts.WaitTimeout / time.Second))
	var timeout *webcam.Timeout
	switch {
	case errors.As(err, &timeout):
		s.opts.Metrics.Timeout()
		return capture.Frame{}, errNoFrame
	case errors.Is(err, syscall.EINTR):
		return capture.Frame{}, errNoFrame
	case err != nil:
		return capture.Frame{}, fmt.Errorf("wait for frame: %w", err)
	}
	buf, idx, err := s.dev.GetFrame()
	if err != nil {
		if errors.Is(err, syscall.EAGAIN) {
			return capture.Frame{}, errNoFrame
		}
		return capture.Frame{}, fmt.Errorf("dequeue: %w", err)
	}
	now := time.Now()
	// buf is driver memory that the next dequeue overwrites: copy first.
	data := make([]byte, len(buf))
	copy(data, buf)
	if err := s.dev.ReleaseFrame(idx); err != nil {
		return capture.Frame{}, fmt.Errorf("requeue buffer %d: %w", idx, err)
	}
	if want := s.mode.Format.FrameSize(s.mode.Width, s.mode.Height); want > 0 && s.stride == 0 && len(data) < want {
		// A short uncompressed frame is still delivered; Decode flags it
		// corrupt and the pipeline counts it.
		s.log.Debug("camera: short frame", "bytes", len(data), "want", want)
	}
	s.seq++
	s.lastFrame = now
	s.opts.Metrics.FrameIn()
	return capture.Frame{
		Seq:    s.seq,
		Time:   now,
		Width:  s.mode.Width,
		Height: s.mode.Height,
		Format: s.mode.Format,
		Stride: s.stride,
		Data:   data,
	}, nil
}

// lost closes a device that went away and starts the outage.
func (s *Source) lost(cause error) {
	s.log.Warn("camera: device lost, will reconnect", "err", cause)
	s.closeDev()
	s.opts.Metrics.Outage()
	s.downSince = time.Now()
	s.backoff = s.opts.ReconnectMin
	s.attempts = 0
}

// reconnect sleeps the current backoff and tries once to reopen.
func (s *Source) reconnect(ctx context.Context) error {
	t := time.NewTimer(s.backoff)
	select {
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	case <-t.C:
	}
	s.attempts++
	err := s.connect()
	if err == nil {
		s.opts.Metrics.Reconnected()
		s.log.Warn("camera: device back", "outage", time.Since(s.downSince).Round(time.Millisecond).String(), "attempts", s.attempts, "mode", s.mode.String())
		return nil
	}
	if s.attempts == 1 || s.attempts%10 == 0 {
		s.log.Warn("camera: still gone", "down_for", time.Since(s.downSince).Round(time.Second).String(), "attempts", s.attempts, "err", err)
	}
	s.backoff = min(2*s.backoff, s.cfg.ReconnectMax)
	return nil
}

func (s *Source) closeDev() {
	if s.dev != nil {
		if err := s.dev.Close(); err != nil {
			s.log.Debug("camera: close", "err", err)
		}
		s.dev = nil
	}
}

// Close stops streaming and closes the device.
func (s *Source) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.dev == nil {
		return nil
	}
	err := s.dev.Close()
	s.dev = nil
	if err != nil && !gone(err) {
		return fmt.Errorf("camera %s: close: %w", s.cfg.Device, err)
	}
	return nil
}
