package capture

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

// chanSource delivers whatever the test sends; closing in ends it with
// io.EOF.
type chanSource struct {
	in     chan Frame
	closed chan struct{}
}

func newChanSource() *chanSource {
	return &chanSource{in: make(chan Frame), closed: make(chan struct{})}
}

func (c *chanSource) Next(ctx context.Context) (Frame, error) {
	select {
	case f, ok := <-c.in:
		if !ok {
			return Frame{}, io.EOF
		}
		return f, nil
	case <-ctx.Done():
		return Frame{}, ctx.Err()
	}
}

func (c *chanSource) Close() error { close(c.closed); return nil }

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLatestNeverServesStaleFrames(t *testing.T) {
	src := newChanSource()
	m := NewMetrics()
	l := NewLatest(src, LatestOptions{Metrics: m, Logger: quietLog()})
	ctx := context.Background()
	// The consumer is busy while five frames arrive: it must get the
	// fifth, and the four it missed are counted as dropped.
	for i := 1; i <= 5; i++ {
		src.in <- Frame{Seq: uint64(i), Format: FormatRGB24}
	}
	waitFor(t, "4 drops", func() bool { return m.Snapshot().Dropped == 4 })
	f, err := l.Next(ctx)
	if err != nil || f.Seq != 5 {
		t.Fatalf("Next = seq %d, %v; want 5", f.Seq, err)
	}
	// Nothing new: Next blocks rather than repeating frame 5.
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if f, err := l.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next without a new frame = seq %d, %v", f.Seq, err)
	}
	src.in <- Frame{Seq: 6}
	if f, err = l.Next(ctx); err != nil || f.Seq != 6 {
		t.Fatalf("Next = %d, %v; want 6", f.Seq, err)
	}
	// End of source: the pending frame first, then io.EOF.
	src.in <- Frame{Seq: 7}
	close(src.in)
	if f, err = l.Next(ctx); err != nil || f.Seq != 7 {
		t.Fatalf("Next = %d, %v; want 7", f.Seq, err)
	}
	if _, err = l.Next(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("after end: %v", err)
	}
	s := m.Snapshot()
	if s.FramesOut != 3 || s.Dropped != 4 {
		t.Fatalf("metrics %+v", s)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err = l.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// A slow consumer of a fast source: sequence numbers only increase, and
// every frame is either delivered or counted as dropped.
func TestLatestSlowConsumer(t *testing.T) {
	src := newChanSource()
	m := NewMetrics()
	l := NewLatest(src, LatestOptions{Metrics: m, Logger: quietLog()})
	const n = 300
	go func() {
		for i := 1; i <= n; i++ {
			src.in <- Frame{Seq: uint64(i)}
			time.Sleep(50 * time.Microsecond)
		}
		close(src.in)
	}()
	var last uint64
	got := 0
	for {
		f, err := l.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if f.Seq <= last {
			t.Fatalf("seq %d after %d", f.Seq, last)
		}
		last = f.Seq
		got++
		time.Sleep(5 * time.Millisecond) // slow detector
	}
	s := m.Snapshot()
	if last != n || uint64(got) != s.FramesOut || s.FramesOut+s.Dropped != n || s.Dropped == 0 {
		t.Fatalf("last %d got %d metrics %+v", last, got, s)
	}
	l.Close()
}

func TestLatestDecodesAndSkipsCorrupt(t *testing.T) {
	src := newChanSource()
	m := NewMetrics()
	l := NewLatest(src, LatestOptions{Metrics: m, Decode: true, Logger: quietLog()})
	defer l.Close()
	good := readTestdata(t, "frames/frame_01.jpg")
	src.in <- Frame{Seq: 1, Format: FormatMJPEG, Data: good[:len(good)/3]}
	go func() {
		// Frame 2 only once frame 1 was judged corrupt, so it is not
		// merely replaced (dropped).
		for m.Snapshot().Corrupt == 0 {
			time.Sleep(time.Millisecond)
		}
		src.in <- Frame{Seq: 2, Format: FormatMJPEG, Data: good}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, err := l.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f.Seq != 2 || f.Image == nil || f.Image.W != 160 || f.Image.H != 120 {
		t.Fatalf("frame %d image %v", f.Seq, f.Image)
	}
	s := m.Snapshot()
	if s.Corrupt != 1 || s.Decodes != 1 || s.DecodeTotal <= 0 || s.FramesOut != 1 || s.Dropped != 0 {
		t.Fatalf("metrics %+v", s)
	}
	// Unsupported formats are not "corrupt": they are a configuration
	// error and are returned.
	src.in <- Frame{Seq: 3, Format: PixelFormat(0x34363248), Data: []byte{1}}
	if _, err := l.Next(ctx); !errors.Is(err, ErrUnsupportedFormat) {
		t.Fatalf("H264 frame: %v", err)
	}
}

func TestLatestCloseUnblocksNext(t *testing.T) {
	src := newChanSource()
	l := NewLatest(src, LatestOptions{Logger: quietLog()})
	errc := make(chan error, 1)
	go func() {
		_, err := l.Next(context.Background())
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Next after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next still blocked after Close")
	}
	select {
	case <-src.closed:
	default:
		t.Fatal("source not closed")
	}
}

func TestMetricsRates(t *testing.T) {
	m := NewMetrics()
	a := m.Snapshot()
	for i := 0; i < 30; i++ {
		m.FrameIn()
	}
	for i := 0; i < 10; i++ {
		m.FrameOut()
		m.Decoded(4 * time.Millisecond)
	}
	m.Outage()
	if m.Snapshot().Connected {
		t.Fatal("connected during outage")
	}
	m.Reconnected()
	b := a
	b.At = a.At.Add(2 * time.Second)
	s := m.Snapshot()
	s.At = b.At
	in, out, dec := s.Rates(a)
	if in != 15 || out != 5 || dec != 4*time.Millisecond {
		t.Fatalf("rates %v %v %v", in, out, dec)
	}
	if s.Reconnects != 1 || s.Outages != 1 || !s.Connected || s.DecodeMean != 4*time.Millisecond {
		t.Fatalf("snapshot %+v", s)
	}
	var nilM *Metrics
	nilM.FrameIn() // nil metrics are allowed
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"FACEGATE_CAMERA_DEVICE":  "/dev/video2",
		"FACEGATE_CAMERA_FORMAT":  "mjpg",
		"FACEGATE_CAMERA_SIZE":    "640x480",
		"FACEGATE_CAMERA_FPS":     "15",
		"FACEGATE_CAMERA_BUFFERS": "3",
		"FACEGATE_CAMERA_LOOP":    "true",
	}
	look := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	c, err := ConfigFromEnv(look)
	if err != nil {
		t.Fatal(err)
	}
	if c.Device != "/dev/video2" || c.Format != "MJPEG" || c.Width != 640 || c.Height != 480 || c.FPS != 15 || c.Buffers != 3 || !c.Loop {
		t.Fatalf("%+v", c)
	}
	env["FACEGATE_CAMERA_FPS"] = "max"
	env["FACEGATE_CAMERA"] = "/srv/demo.mp4"
	env["FACEGATE_CAMERA_WIDTH"] = "800"
	delete(env, "FACEGATE_CAMERA_DEVICE")
	if c, err = ConfigFromEnv(look); err != nil || c.FPS != FPSMax || c.Device != "/srv/demo.mp4" || c.Width != 800 || c.Height != 480 {
		t.Fatalf("fps max, daemon names: %+v %v", c, err)
	}
	bad := map[string]string{
		"FACEGATE_CAMERA_FORMAT":  "H264",
		"FACEGATE_CAMERA_SIZE":    "640*480",
		"FACEGATE_CAMERA_FPS":     "-3",
		"FACEGATE_CAMERA_BUFFERS": "100",
	}
	for k, v := range bad {
		e := map[string]string{k: v}
		if _, err := ConfigFromEnv(func(k string) (string, bool) { v, ok := e[k]; return v, ok }); err == nil {
			t.Errorf("%s=%s accepted", k, v)
		}
	}
	d, err := ConfigFromEnv(func(string) (string, bool) { return "", false })
	if err != nil || d.Device != "/dev/video0" || d.Format != "auto" || d.Width != 1280 {
		t.Fatalf("defaults %+v %v", d, err)
	}
}
