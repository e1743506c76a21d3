package file

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/facegate/facegate/capture"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

const mjpegFile = "../testdata/testsrc2_640x480_422.mjpeg"

// collect reads a source to the end (or n frames).
func collect(t *testing.T, s capture.Source, n int) ([]capture.Frame, error) {
	t.Helper()
	var out []capture.Frame
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for n <= 0 || len(out) < n {
		f, err := s.Next(ctx)
		if err != nil {
			return out, err
		}
		out = append(out, f)
	}
	return out, nil
}

func TestMJPEGFile(t *testing.T) {
	m := capture.NewMetrics()
	s, err := OpenMJPEG(mjpegFile, Options{FPS: capture.FPSMax, Metrics: m, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	frames, err := collect(t, s, 0)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("end: %v", err)
	}
	if len(frames) != 6 {
		t.Fatalf("%d frames, want 6", len(frames))
	}
	for i, f := range frames {
		if f.Seq != uint64(i+1) || f.Width != 640 || f.Height != 480 || f.Format != capture.FormatMJPEG {
			t.Fatalf("frame %d: seq %d %dx%d %s", i, f.Seq, f.Width, f.Height, f.Format)
		}
		img, err := f.RGB()
		if err != nil || img.W != 640 || img.H != 480 {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
	if snap := m.Snapshot(); snap.FramesIn != 6 || snap.Corrupt != 0 {
		t.Fatalf("metrics %+v", snap)
	}
}

// splitFrames cuts the test file at SOI markers (test helper, naive but
// fine for ffmpeg output).
func splitFrames(t *testing.T) [][]byte {
	data, err := os.ReadFile(mjpegFile)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for len(data) > 0 {
		i := bytes.Index(data[2:], []byte{0xff, 0xd8, 0xff})
		if i < 0 {
			out = append(out, data)
			break
		}
		out = append(out, data[:i+2])
		data = data[i+2:]
	}
	return out
}

func TestMJPEGCorruptAndTruncated(t *testing.T) {
	fr := splitFrames(t)
	if len(fr) != 6 {
		t.Fatalf("test file has %d frames", len(fr))
	}
	var b bytes.Buffer
	b.WriteString("--boundary\r\nContent-Type: image/jpeg\r\n\r\n") // multipart junk: ignored
	b.Write(fr[0])
	b.Write(fr[1][:len(fr[1])/2]) // cut short: the next SOI starts inside it
	b.Write(fr[2])
	b.Write([]byte{0xff, 0xd8, 0x00, 0x11, 0x22}) // SOI then garbage
	b.Write(fr[3])
	mangled := append([]byte{}, fr[4]...)
	for i := len(mangled) / 2; i < len(mangled)/2+400; i++ {
		mangled[i] = 0x5a // entropy data destroyed, markers intact
	}
	b.Write(mangled)
	b.Write(fr[5][:len(fr[5])-1000]) // file ends mid-frame
	path := filepath.Join(t.TempDir(), "bad.mjpeg")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	m := capture.NewMetrics()
	s, err := OpenMJPEG(path, Options{FPS: capture.FPSMax, Metrics: m, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Through Latest with decoding, one frame at a time (the consumer
	// waits for each, so nothing is dropped).
	l := capture.NewLatest(s, capture.LatestOptions{Metrics: m, Decode: true, Logger: quiet()})
	var decoded []uint64
	for {
		f, err := l.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		decoded = append(decoded, f.Seq)
	}
	snap := m.Snapshot()
	// Intact structure: frames 0, 2, 3 and the mangled 4 (4 frames in);
	// dropped by the splitter: half of 1, the garbage one, the tail of 5.
	if snap.FramesIn != 4 {
		t.Fatalf("frames in %d, want 4 (%+v)", snap.FramesIn, snap)
	}
	if snap.Corrupt < 3 || snap.Corrupt > 4 {
		t.Fatalf("corrupt %d, want 3 (+1 if the mangled frame fails to decode)", snap.Corrupt)
	}
	if int(snap.FramesOut)+int(snap.Corrupt)-3+int(snap.Dropped) != 4 || len(decoded) != int(snap.FramesOut) {
		t.Fatalf("accounting: decoded %v, %+v", decoded, snap)
	}
}

func TestMJPEGLoopAndPacing(t *testing.T) {
	s, err := OpenMJPEG(mjpegFile, Options{FPS: 100, Loop: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Now()
	frames, err := collect(t, s, 15)
	if err != nil {
		t.Fatal(err)
	}
	el := time.Since(t0)
	if frames[14].Seq != 15 {
		t.Fatalf("seq across loops %d", frames[14].Seq)
	}
	// 15 frames at 100 fps: ~140ms (the first is immediate).
	if el < 120*time.Millisecond || el > 2*time.Second {
		t.Fatalf("15 frames at 100fps took %v", el)
	}
	// A file with no intact frame cannot loop forever.
	junk := filepath.Join(t.TempDir(), "junk.mjpg")
	os.WriteFile(junk, bytes.Repeat([]byte{0xff, 0xd8, 1, 2, 3}, 100), 0o644)
	s2, err := OpenMJPEG(junk, Options{FPS: capture.FPSMax, Loop: true, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := collect(t, s2, 0); err == nil || !strings.Contains(err.Error(), "no intact frame") {
		t.Fatalf("junk loop: %v", err)
	}
	// Without looping too: an all-garbage file is an error, not an
	// empty stream.
	s3, err := OpenMJPEG(junk, Options{FPS: capture.FPSMax, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	if _, err := collect(t, s3, 0); err == nil || !strings.Contains(err.Error(), "no intact frame") {
		t.Fatalf("junk: %v", err)
	}
	if _, err := OpenMJPEG("/nonexistent.mjpeg", Options{}); err == nil || !strings.Contains(err.Error(), "nonexistent") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestDir(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"frame_01.jpg", "frame_02.jpg", "frame_03.jpg", "frame_04.png"} {
		b, err := os.ReadFile("../testdata/frames/" + n)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, n), b, 0o644)
	}
	os.WriteFile(filepath.Join(dir, "frame_025.jpg"), []byte("not a jpeg"), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644)
	m := capture.NewMetrics()
	s, err := OpenDir(dir, Options{FPS: capture.FPSMax, Loop: true, Metrics: m, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	frames, err := collect(t, s, 8)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range frames {
		img, err := f.RGB()
		if err != nil || img.W != 160 || img.H != 120 || f.Seq != uint64(i+1) {
			t.Fatalf("frame %d: %v %v", i, f.Seq, err)
		}
	}
	// frame_04.png is a flat 0x3366cc (through ffmpeg's YUV: +-4).
	r, g, b := frames[3].Image.RGBAt(10, 10)
	near := func(a uint8, b int) bool { return int(a) >= b-4 && int(a) <= b+4 }
	if frames[3].Format != capture.FormatRGB24 || !near(r, 0x33) || !near(g, 0x66) || !near(b, 0xcc) {
		t.Fatalf("png frame %s %d,%d,%d", frames[3].Format, r, g, b)
	}
	if m.Snapshot().Corrupt != 2 { // frame_025.jpg in each of two passes
		t.Fatalf("corrupt %d, want 2", m.Snapshot().Corrupt)
	}
	if _, err := OpenDir(t.TempDir(), Options{}); err == nil || !strings.Contains(err.Error(), "no .jpg") {
		t.Fatalf("empty dir: %v", err)
	}
}

// ffmpegOrSkip returns the ffmpeg path; missing ffmpeg skips locally and
// fails in CI.
func ffmpegOrSkip(t *testing.T) string {
	p, err := exec.LookPath("ffmpeg")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ffmpeg missing in CI (listed in .ci/apt-packages)")
		}
		t.Skip("ffmpeg not installed; skipping the ffmpeg source test")
	}
	return p
}

func TestFFmpeg(t *testing.T) {
	ff := ffmpegOrSkip(t)
	video := filepath.Join(t.TempDir(), "bars.mkv")
	// A 2 s, 25 fps SMPTE-bars clip with a different codec than MJPEG.
	out, err := exec.Command(ff, "-v", "error", "-f", "lavfi", "-i", "smptebars=size=320x240:rate=25", "-t", "2", "-c:v", "ffv1", video).CombinedOutput()
	if err != nil {
		t.Fatalf("make test video: %v %s", err, out)
	}
	m := capture.NewMetrics()
	s, err := OpenFFmpeg(video, FFmpegOptions{Options: Options{FPS: capture.FPSMax, Metrics: m, Logger: quiet()}})
	if err != nil {
		t.Fatal(err)
	}
	frames, err := collect(t, s, 0)
	s.Close()
	if !errors.Is(err, io.EOF) {
		t.Fatalf("end: %v", err)
	}
	if len(frames) != 50 {
		t.Fatalf("%d frames, want 50", len(frames))
	}
	img := frames[10].Image
	if img.W != 320 || img.H != 240 {
		t.Fatalf("size %dx%d", img.W, img.H)
	}
	if r, g, b := img.RGBAt(5*320/14, 60); r > 20 || g < 170 || b < 170 {
		t.Fatalf("cyan bar %d,%d,%d", r, g, b)
	}
	// Native-rate playback (-re) paces at 25 fps; downscale on the way.
	s, err = OpenFFmpeg(video, FFmpegOptions{Options: Options{Logger: quiet()}, MaxWidth: 160, MaxHeight: 160})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	frames, err = collect(t, s, 13)
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); el < 350*time.Millisecond {
		t.Fatalf("13 frames at native 25fps came in %v", el)
	}
	if frames[0].Image.W != 160 || frames[0].Image.H != 120 {
		t.Fatalf("downscaled to %dx%d", frames[0].Image.W, frames[0].Image.H)
	}
	// Truncated video: ffmpeg decodes what it can, then a clear end.
	data, _ := os.ReadFile(video)
	trunc := filepath.Join(t.TempDir(), "trunc.mkv")
	os.WriteFile(trunc, data[:len(data)/2], 0o644)
	s, err = OpenFFmpeg(trunc, FFmpegOptions{Options: Options{FPS: capture.FPSMax, Logger: quiet()}})
	if err != nil {
		t.Fatal(err)
	}
	frames, err = collect(t, s, 0)
	s.Close()
	if len(frames) == 0 || len(frames) >= 50 || err == nil {
		t.Fatalf("truncated: %d frames, %v", len(frames), err)
	}
	// Not a video at all.
	bogus := filepath.Join(t.TempDir(), "bogus.mp4")
	os.WriteFile(bogus, []byte("this is not a video"), 0o644)
	s, err = OpenFFmpeg(bogus, FFmpegOptions{Options: Options{Logger: quiet()}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Next(context.Background())
	s.Close()
	if err == nil || !strings.Contains(err.Error(), "ffmpeg") || !strings.Contains(err.Error(), "bogus.mp4") {
		t.Fatalf("bogus file: %v", err)
	}
}

func TestFFmpegMissing(t *testing.T) {
	_, err := OpenFFmpeg("clip.mp4", FFmpegOptions{Binary: "ffmpeg-not-installed-here"})
	if !errors.Is(err, ErrNoFFmpeg) || !strings.Contains(err.Error(), "apt-get install ffmpeg") {
		t.Fatalf("err = %v", err)
	}
}

// Real clips from the shared data folder, when present (never in CI).
func TestFFmpegSharedClip(t *testing.T) {
	clip := "../../../shared/data/videos/faceapi_bbt_5frames.mp4"
	if _, err := os.Stat(clip); err != nil {
		t.Skip("shared video clips not present")
	}
	ffmpegOrSkip(t)
	s, err := OpenFFmpeg(clip, FFmpegOptions{Options: Options{FPS: capture.FPSMax, Logger: quiet()}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	frames, err := collect(t, s, 0)
	if !errors.Is(err, io.EOF) || len(frames) == 0 {
		t.Fatalf("%d frames, %v", len(frames), err)
	}
	t.Logf("%s: %d frames %dx%d", clip, len(frames), frames[0].Image.W, frames[0].Image.H)
}
