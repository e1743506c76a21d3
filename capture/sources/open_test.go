package sources

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facegate/facegate/capture"
)

func TestDetectAndOpen(t *testing.T) {
	dir := t.TempDir()
	mj := filepath.Join(dir, "clip.MJPG")
	data, err := os.ReadFile("../testdata/testsrc2_640x480_422.mjpeg")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(mj, data, 0o644)
	cases := map[string]Kind{
		"/dev/video0":                           KindV4L2,
		"/dev/null":                             KindV4L2,
		"../testdata/frames":                    KindDir,
		mj:                                      KindMJPEG,
		"../testdata/smptebars_640x480_420.jpg": KindFFmpeg,
	}
	for dev, want := range cases {
		got, err := Detect(dev)
		if err != nil || got != want {
			t.Errorf("Detect(%s) = %s, %v; want %s", dev, got, err, want)
		}
	}
	if _, err := Detect(filepath.Join(dir, "missing.mp4")); err == nil || !strings.Contains(err.Error(), "missing.mp4") {
		t.Errorf("missing file: %v", err)
	}

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := capture.DefaultConfig()
	cfg.Device, cfg.FPS = mj, capture.FPSMax
	m := capture.NewMetrics()
	src, kind, err := Open(cfg, m, log)
	if err != nil || kind != KindMJPEG {
		t.Fatalf("Open mjpeg: %s %v", kind, err)
	}
	n := 0
	for {
		_, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	src.Close()
	if n != 6 || m.Snapshot().FramesIn != 6 {
		t.Fatalf("%d frames", n)
	}
	cfg.Device = "/dev/null"
	if _, _, err := Open(cfg, m, log); err == nil || !strings.Contains(err.Error(), "not a V4L2 device") {
		t.Fatalf("/dev/null: %v", err)
	}
}
