package v4l2

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blackjack/webcam"

	"github.com/facegate/facegate/capture"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func cfg(format string, w, h int) capture.Config {
	c := capture.DefaultConfig()
	c.Device = "/dev/fake0"
	c.Format = format
	c.Width, c.Height = w, h
	c.ReconnectMax = 20 * time.Millisecond
	return c
}

func TestChoose(t *testing.T) {
	cam := newFakeCam()
	formats := ListFormats(cam)
	cases := []struct {
		format string
		w, h   int
		want   string
		errHas string
	}{
		{"auto", 1280, 720, "MJPG 1280x720", ""},
		{"auto", 1920, 1080, "MJPG 1920x1080", ""},
		{"auto", 1000, 1000, "MJPG 640x480", ""},
		{"YUYV", 1920, 1080, "YUYV 1280x720", ""},
		{"yuyv", 639, 479, "YUYV 320x240", ""},
		{"MJPEG", 320, 240, "", "unsupported camera size"},
		{"H264", 640, 480, "", "unsupported camera format"},
		{"RGB3", 640, 480, "", "device offers MJPG, YUYV"},
	}
	for _, c := range cases {
		m, err := Choose(formats, c.format, c.w, c.h)
		if c.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), c.errHas) {
				t.Errorf("Choose(%s %dx%d) = %v, %v; want error with %q", c.format, c.w, c.h, m, err, c.errHas)
			}
			continue
		}
		if err != nil || m.String() != c.want {
			t.Errorf("Choose(%s %dx%d) = %v, %v; want %s", c.format, c.w, c.h, m, err, c.want)
		}
	}
	// auto without MJPEG falls back to YUYV.
	delete(cam.formats, webcam.PixelFormat(capture.FormatMJPEG))
	m, err := Choose(ListFormats(cam), "auto", 800, 600)
	if err != nil || m.String() != "YUYV 640x480" {
		t.Errorf("auto without MJPEG = %v, %v", m, err)
	}
	// Stepwise sizes are clamped to the step grid.
	step := []FormatInfo{{Format: capture.FormatYUYV, Sizes: []webcam.FrameSize{{MinWidth: 16, MaxWidth: 1920, StepWidth: 16, MinHeight: 16, MaxHeight: 1080, StepHeight: 8}}}}
	m, err = Choose(step, "auto", 1000, 700)
	if err != nil || m.String() != "YUYV 992x696" {
		t.Errorf("stepwise = %v, %v", m, err)
	}
}

func TestFramesAreCopiedOutOfDriverBuffers(t *testing.T) {
	bus := &fakeBus{}
	s, err := Open(cfg("YUYV", 320, 240), Options{Open: bus.open, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cam := bus.last()
	if cam.nbufs != 4 {
		t.Errorf("buffers = %d, want 4 (small count for low latency)", cam.nbufs)
	}
	var frames []capture.Frame
	for i := 0; i < 10; i++ { // more frames than buffers: every buffer is reused
		f, err := s.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, f)
	}
	for i, f := range frames {
		n := i + 1
		if f.Seq != uint64(n) || f.Data[0] != byte(n) || f.Data[2] != 0xAB {
			t.Fatalf("frame %d: seq %d data % x: overwritten driver memory?", n, f.Seq, f.Data[:3])
		}
		if f.Format != capture.FormatYUYV || f.Width != 320 || f.Height != 240 {
			t.Fatalf("frame %d: %s %dx%d", n, f.Format, f.Width, f.Height)
		}
	}
}

func TestTimeoutsAreNotErrors(t *testing.T) {
	bus := &fakeBus{setup: func(c *fakeCam) {
		c.waits = []error{new(webcam.Timeout), new(webcam.Timeout), syscall.EINTR, nil}
	}}
	m := capture.NewMetrics()
	s, err := Open(cfg("auto", 640, 480), Options{Open: bus.open, Logger: quiet(), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f, err := s.Next(context.Background())
	if err != nil || f.Seq != 1 {
		t.Fatalf("Next = %v, %v", f.Seq, err)
	}
	if got := m.Snapshot(); got.Timeouts != 2 || got.FramesIn != 1 || got.Outages != 0 {
		t.Fatalf("metrics %+v", got)
	}
	// EAGAIN from a non-blocking dequeue is "no frame yet".
	bus.last().dqErr = syscall.EAGAIN
	if f, err = s.Next(context.Background()); err != nil || f.Seq != 2 {
		t.Fatalf("after EAGAIN: %v, %v", f.Seq, err)
	}
}

func TestUnplugReconnects(t *testing.T) {
	for _, e := range []error{syscall.ENODEV, syscall.EIO} {
		t.Run(e.Error(), func(t *testing.T) {
			bus := &fakeBus{}
			m := capture.NewMetrics()
			s, err := Open(cfg("auto", 1280, 720), Options{Open: bus.open, Logger: quiet(), Metrics: m, ReconnectMin: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			for i := 0; i < 3; i++ {
				if _, err := s.Next(ctx); err != nil {
					t.Fatal(err)
				}
			}
			first := bus.last()
			// Unplug: poll reports an error, then the node is gone for
			// three reopen attempts (ENOENT), then it is back.
			first.waits = []error{e}
			bus.openErr = []error{syscall.ENOENT, syscall.ENOENT, syscall.ENOENT}
			f, err := s.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if f.Seq != 4 {
				t.Fatalf("seq after reconnect = %d, want 4", f.Seq)
			}
			if !first.closed {
				t.Fatal("lost device was not closed")
			}
			if bus.opens != 5 {
				t.Fatalf("opens = %d, want 5 (1 + 3 failed + 1)", bus.opens)
			}
			snap := m.Snapshot()
			if snap.Outages != 1 || snap.Reconnects != 1 || !snap.Connected {
				t.Fatalf("metrics %+v", snap)
			}
			// Dequeue errors count as unplug too.
			bus.last().dqErr = e
			if f, err = s.Next(ctx); err != nil || f.Seq != 5 {
				t.Fatalf("after dequeue %v: %v, %v", e, f.Seq, err)
			}
			if m.Snapshot().Reconnects != 2 {
				t.Fatal("dequeue error did not reconnect")
			}
		})
	}
}

func TestOutageRespectsContext(t *testing.T) {
	bus := &fakeBus{}
	s, err := Open(cfg("auto", 640, 480), Options{Open: bus.open, Logger: quiet(), ReconnectMin: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bus.last().waits = []error{syscall.ENODEV}
	bus.openErr = make([]error, 1000)
	for i := range bus.openErr {
		bus.openErr[i] = syscall.ENOENT
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = s.Next(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next during outage = %v, want deadline exceeded", err)
	}
	// Backoff is capped (ReconnectMax 20ms): ~10 attempts in 200ms, not 1000.
	if bus.opens < 4 || bus.opens > 40 {
		t.Fatalf("opens during 200ms outage = %d", bus.opens)
	}
}

func TestOtherErrorsAreReturned(t *testing.T) {
	bus := &fakeBus{}
	s, err := Open(cfg("auto", 640, 480), Options{Open: bus.open, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	bus.last().waits = []error{syscall.ENOMEM}
	if _, err := s.Next(context.Background()); !errors.Is(err, syscall.ENOMEM) || !strings.Contains(err.Error(), "/dev/fake0") {
		t.Fatalf("err = %v", err)
	}
	s.Close()
	if _, err := s.Next(context.Background()); !errors.Is(err, capture.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{syscall.EACCES, "'video' group"},
		{syscall.ENOENT, "no such device"},
		{syscall.ENOTTY, "not a V4L2 device"},
		{errors.New("Not a video capture device"), "not a video capture device"},
	}
	for _, c := range cases {
		bus := &fakeBus{openErr: []error{c.err}}
		_, err := Open(cfg("auto", 640, 480), Options{Open: bus.open, Logger: quiet()})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "/dev/fake0") {
			t.Errorf("open with %v: %v; want it to name the device and say %q", c.err, err, c.want)
		}
	}
	busy := &fakeBus{setup: func(c *fakeCam) { c.busy = true }}
	if _, err := Open(cfg("auto", 640, 480), Options{Open: busy.open, Logger: quiet()}); err == nil || !strings.Contains(err.Error(), "another program is streaming") {
		t.Errorf("busy camera: %v", err)
	}
	// Unsupported format/size fail at Open, and the device is closed.
	bus := &fakeBus{}
	if _, err := Open(cfg("MJPEG", 100, 100), Options{Open: bus.open, Logger: quiet()}); err == nil || !strings.Contains(err.Error(), "unsupported camera size") {
		t.Errorf("tiny MJPEG: %v", err)
	} else if !bus.last().closed {
		t.Error("device left open after a failed negotiation")
	}
}

// The real opener against nodes that exist on every Linux machine.
func TestOpenRealNodes(t *testing.T) {
	_, err := OpenWebcam("/dev/video-does-not-exist")
	if err == nil || !strings.Contains(err.Error(), "no such device") || !strings.Contains(err.Error(), "/dev/video-does-not-exist") {
		t.Errorf("missing node: %v", err)
	}
	_, err = OpenWebcam("/dev/null")
	if err == nil || !strings.Contains(err.Error(), "/dev/null") || !strings.Contains(err.Error(), "not a V4L2 device") {
		t.Errorf("/dev/null: %v", err)
	}
	if os.Geteuid() != 0 {
		p := t.TempDir() + "/video9"
		if err := os.WriteFile(p, nil, 0); err != nil {
			t.Fatal(err)
		}
		_, err = OpenWebcam(p)
		if err == nil || !strings.Contains(err.Error(), "video' group") {
			t.Errorf("unreadable node: %v", err)
		}
	}
}

// The full path: fake YUYV camera through Latest with decoding.
func TestYUYVThroughLatest(t *testing.T) {
	bus := &fakeBus{setup: func(c *fakeCam) {
		c.frame = func(n int, m Mode) []byte {
			b := make([]byte, m.Width*m.Height*2)
			for i := 0; i < len(b); i += 4 { // mid grey
				b[i], b[i+1], b[i+2], b[i+3] = 126, 128, 126, 128
			}
			return b
		}
	}}
	m := capture.NewMetrics()
	s, err := Open(cfg("YUYV", 320, 240), Options{Open: bus.open, Logger: quiet(), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	l := capture.NewLatest(s, capture.LatestOptions{Metrics: m, Decode: true, Logger: quiet()})
	defer l.Close()
	f, err := l.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r, g, b := f.Image.RGBAt(100, 100)
	if f.Image.W != 320 || f.Image.H != 240 || r != 128 || g != 128 || b != 128 {
		t.Fatalf("decoded %dx%d pixel %d,%d,%d", f.Image.W, f.Image.H, r, g, b)
	}
}

// vivid has no MJPEG, so MJPEG camera frames are tested here: real JPEG
// frames (ffmpeg's MJPEG encoder, 4:2:2 like UVC webcams) delivered by the
// fake driver through the same Source -> Latest -> decode path, with a
// corrupt frame in between that must be skipped and counted.
func TestMJPEGCameraFrames(t *testing.T) {
	data, err := os.ReadFile("../testdata/testsrc2_640x480_422.mjpeg")
	if err != nil {
		t.Fatal(err)
	}
	var jpegs [][]byte
	for len(data) > 0 {
		i := strings.Index(string(data[2:]), "\xff\xd8\xff")
		if i < 0 {
			jpegs = append(jpegs, data)
			break
		}
		jpegs = append(jpegs, data[:i+2])
		data = data[i+2:]
	}
	bus := &fakeBus{setup: func(c *fakeCam) {
		c.frame = func(n int, m Mode) []byte {
			if n == 3 {
				return jpegs[2][:len(jpegs[2])/2] // cut short by the USB link
			}
			return jpegs[(n-1)%len(jpegs)]
		}
	}}
	m := capture.NewMetrics()
	s, err := Open(cfg("auto", 640, 480), Options{Open: bus.open, Logger: quiet(), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	if s.Mode().String() != "MJPG 640x480" {
		t.Fatalf("mode %s", s.Mode())
	}
	// Drive the source directly (no dropping) and decode like Latest.
	var ok, corrupt int
	for i := 0; i < 6; i++ {
		f, err := s.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		img, err := f.RGB()
		if errors.Is(err, capture.ErrCorrupt) {
			corrupt++
			if f.Seq != 3 {
				t.Fatalf("frame %d reported corrupt", f.Seq)
			}
			continue
		}
		if err != nil || img.W != 640 || img.H != 480 {
			t.Fatalf("frame %d: %v", f.Seq, err)
		}
		ok++
	}
	if ok != 5 || corrupt != 1 {
		t.Fatalf("ok %d corrupt %d", ok, corrupt)
	}
	s.Close()
	// And through Latest: the corrupt frame is skipped and counted, never
	// returned.
	bus2 := &fakeBus{setup: bus.setup}
	s2, err := Open(cfg("MJPEG", 640, 480), Options{Open: bus2.open, Logger: quiet(), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	l := capture.NewLatest(s2, capture.LatestOptions{Metrics: m, Decode: true, Logger: quiet()})
	defer l.Close()
	for i := 0; i < 20; i++ {
		f, err := l.Next(context.Background())
		if err != nil || f.Image == nil || f.Image.W != 640 {
			t.Fatalf("Latest frame: %v", err)
		}
	}
}

// webcam.SetImageFormat reports the requested size; the read-back
// (VIDIOC_G_FMT) wins, and padded rows are carried in Frame.Stride.
func TestDriverAdjustedFormat(t *testing.T) {
	bus := &fakeBus{setup: func(c *fakeCam) {
		c.frame = func(n int, m Mode) []byte { return make([]byte, 1408*360) }
	}}
	q := func(string) (Format, error) {
		return Format{Width: 640, Height: 360, PixelFormat: uint32(capture.FormatYUYV), BytesPerLine: 1408}, nil
	}
	s, err := Open(cfg("YUYV", 640, 480), Options{Open: bus.open, Logger: quiet(), QueryFormat: q})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Mode().String() != "YUYV 640x360" {
		t.Fatalf("mode %s", s.Mode())
	}
	f, err := s.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if f.Stride != 1408 || f.Width != 640 || f.Height != 360 {
		t.Fatalf("frame stride %d %dx%d", f.Stride, f.Width, f.Height)
	}
	if img, err := f.RGB(); err != nil || img.W != 640 || img.H != 360 {
		t.Fatalf("decode: %v", err)
	}
}
