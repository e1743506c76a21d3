package tracking

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facegate/facegate/bench"
	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/track"
)

func TestTrackingSmoke(t *testing.T) {
	clip := filepath.Join(infer.TestDataDir(t), "sequences", "otb_girl")
	det := infer.TestModelDir(t, "blazeface-short")
	emb := infer.TestModelDir(t, "dlib-resnet-v1")
	p, closeFn, err := infer.OpenPipeline(det, emb, infer.Options{IntraOpThreads: 1, InterOpThreads: 1, CPUOnly: true}, infer.DetectorConfig{}, 0.25)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	// Threshold 100 reuses whenever allowed, so the tracked path runs; 1
	// detects almost always.
	var out bytes.Buffer
	rep, err := Config{Pipeline: p, Clips: []string{clip}, ClipFrames: 10, Thresholds: []float64{1, 100}, MaxFrames: []int{3},
		Size: track.DefaultSize, RefFrames: 2, FMR: 1e-3, Threads: 1, Inter: 1, Pad: 0.25}.Run(context.Background(), &out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Kind != "tracking" || len(rep.Clips) != 1 || rep.Threshold.Value <= 0 || rep.RefFrames != 2 {
		t.Fatalf("report: %+v", rep)
	}
	c := rep.Clips[0]
	if c.Clip != "otb_girl" || c.Frames != 10 || c.Width != 128 || c.Height != 96 || c.FramesWithFace == 0 || c.RefFrames != 2 || len(c.Results) != 2 {
		t.Fatalf("clip: %+v", c)
	}
	if c.FreshWall["detect"].N != 10 || c.FreshWall["embed"].N != c.FramesWithFace || c.FreshWall["total"].Mean < c.FreshWall["detect"].Mean {
		t.Errorf("fresh times: %+v", c.FreshWall)
	}
	for _, r := range c.Results {
		detected := 0
		for _, n := range r.Detected {
			detected += n
		}
		if r.Frames != 10 || r.Skipped+detected != r.Frames || r.Distance.N > r.Skipped || r.CheckUS.N != r.Frames || r.Flips != r.FlipAccepts+r.FlipRejects {
			t.Errorf("setting %+v: inconsistent counts", r)
		}
	}
	// Threshold 100, max 3 frames: detect, reuse 3, detect, ... once a face
	// is remembered.
	if hi := c.Results[1]; hi.Threshold != 100 || hi.Skipped < 6 || hi.Detected["max-frames"] < 1 || hi.Distance.N == 0 {
		t.Errorf("threshold 100: %+v", hi)
	}
	if len(rep.Pooled) != 2 || rep.Pooled[1].Skipped != c.Results[1].Skipped || rep.Pooled[1].Distance.N != c.Results[1].Distance.N {
		t.Errorf("pooled: %+v", rep.Pooled)
	}
	if !strings.Contains(out.String(), "dist tracked-fresh") {
		t.Errorf("no table in output:\n%s", out.String())
	}
}

func TestTrackingConfig(t *testing.T) {
	ok := Config{Clips: []string{"x"}, Thresholds: []float64{2}, MaxFrames: []int{5}, Size: track.DefaultSize, RefFrames: 1}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.Clips = nil },
		func(c *Config) { c.Thresholds = []float64{0} },
		func(c *Config) { c.MaxFrames = []int{0} },
		func(c *Config) { c.RefFrames = 0 },
		func(c *Config) { c.ClipFrames = -1 },
		func(c *Config) { c.Clips = []string{"x@10x10"} },
	} {
		c := ok
		bad(&c)
		if err := c.Validate(); !errors.Is(err, bench.ErrConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
	if _, err := ok.Run(context.Background(), &bytes.Buffer{}); !errors.Is(err, bench.ErrConfig) {
		t.Errorf("no pipeline: %v", err)
	}
}

func TestClipCrop(t *testing.T) {
	path, r, err := clipCrop("a@b/clip.mp4@640x480+450+300")
	if err != nil || path != "a@b/clip.mp4" || r.Dx() != 640 || r.Dy() != 480 || r.Min.X != 450 || r.Min.Y != 300 {
		t.Errorf("%q %v %v", path, r, err)
	}
	if path, r, err := clipCrop("dir"); err != nil || path != "dir" || !r.Empty() {
		t.Errorf("%q %v %v", path, r, err)
	}
}
