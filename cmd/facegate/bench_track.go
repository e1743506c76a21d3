package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/facegate/facegate/bench"
	"github.com/facegate/facegate/bench/tracking"
	"github.com/facegate/facegate/infer/track"
)

// trackFlags are the settings of `facegate bench -tracking`
// (bench/tracking).
type trackFlags struct {
	clips      stringList
	thresholds []float64
	maxFrames  []int
	size       int
	clipFrames int
	maxW, maxH int
	refFrames  int
	fmr        float64
}

func (tk *trackFlags) register(fs *flag.FlagSet) {
	tk.thresholds = []float64{2, 4, 6, 8, 12, 16}
	tk.maxFrames = []int{5, 15}
	fs.Var(&tk.clips, "clip", "-tracking: a video file (read by ffmpeg) or a folder of images, optionally with @WxH+X+Y to crop each (scaled) frame; repeatable or comma-separated")
	fs.Var(floatList{&tk.thresholds}, "track-threshold", "-tracking: tracker thresholds to sweep (mean absolute luma difference of the face thumbnails)")
	fs.Var(intList{&tk.maxFrames}, "track-max-frames", "-tracking: tracker max frames to sweep (consecutive frames that may reuse one detection)")
	fs.IntVar(&tk.size, "track-size", track.DefaultSize, "-tracking: thumbnail side in cells")
	fs.IntVar(&tk.clipFrames, "clip-frames", 0, "-tracking: at most this many frames of each clip (0: all)")
	fs.IntVar(&tk.maxW, "clip-max-width", 1280, "-tracking: ffmpeg downscales videos to fit this width (0: no limit)")
	fs.IntVar(&tk.maxH, "clip-max-height", 720, "-tracking: ... and this height")
	fs.IntVar(&tk.refFrames, "ref-frames", 5, "-tracking: the reference template is the mean fresh embedding of the first N frames with a face")
	fs.Float64Var(&tk.fmr, "fmr", 1e-3, "-tracking: decisions use the model's calibrated threshold for this false-match rate")
}

// runTracking checks the sweep, then opens the pipeline and runs it.
func runTracking(ctx context.Context, bf *benchFlags, tk *trackFlags, build bench.Build, stdout io.Writer) (*tracking.Report, error) {
	cfg := tracking.Config{Clips: tk.clips, Thresholds: tk.thresholds, MaxFrames: tk.maxFrames, Size: tk.size,
		ClipFrames: tk.clipFrames, MaxWidth: tk.maxW, MaxHeight: tk.maxH, RefFrames: tk.refFrames, FMR: tk.fmr,
		Threads: bf.threads, Inter: bf.inter, Pad: bf.pad, Build: build}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p, closeFn, err := bf.openPipeline()
	if err != nil {
		return nil, fmt.Errorf("tracking: %w", err)
	}
	defer closeFn()
	cfg.Pipeline = p
	return cfg.Run(ctx, stdout)
}
