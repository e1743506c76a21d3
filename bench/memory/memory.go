package memory

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/facegate/facegate/bench"
	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/imageio"
)

// Config is one memory run.
type Config struct {
	// Pipeline is the open detector and embedder; the caller closes it.
	Pipeline *infer.Pipeline
	// Image is the frame; when empty, the first image of PairsFile under
	// Root.
	Image           string
	PairsFile, Root string
	Frames          int           // frames to run
	SampleEvery     int           // sample RSS every N frames
	MaxTime         time.Duration // stop early after this long (the report says how many frames ran)
	Threads         int           // the pipeline's intra-op threads, for the report
	Build           bench.Build
}

// Validate rejects a run without its inputs (all but the pipeline, so it
// can run before the models load).
func (cfg Config) Validate() error {
	if cfg.Image == "" && (cfg.PairsFile == "" || cfg.Root == "") {
		return fmt.Errorf("%w: memory needs an image, or a pairs file and a root folder", bench.ErrConfig)
	}
	if cfg.Frames < 1 || cfg.SampleEvery < 1 || cfg.MaxTime <= 0 {
		return fmt.Errorf("%w: memory needs frames, a sampling interval and a time limit above 0", bench.ErrConfig)
	}
	return nil
}

// Report is the JSON of -memory.
type Report struct {
	Kind     string        `json:"kind"`
	Machine  bench.Machine `json:"machine"`
	Detector string        `json:"detector"`
	Embedder string        `json:"embedder"`
	Image    string        `json:"image"`
	Threads  int           `json:"intra_op_threads"`
	Frames   int           `json:"frames"`
	Asked    int           `json:"frames_asked"`
	Samples  []Sample      `json:"samples"`
	// RSSFirst is the RSS at the first sample at or after 1,000 frames (or
	// the first sample), RSSLast at the last; GrowthPct their difference
	// relative to RSSFirst (the target is ≤ 5 %).
	RSSFirst  int64   `json:"rss_first_bytes"`
	RSSLast   int64   `json:"rss_last_bytes"`
	FirstAt   int     `json:"rss_first_frame"`
	LastAt    int     `json:"rss_last_frame"`
	GrowthPct float64 `json:"growth_pct"`
	MSPerFrm  float64 `json:"ms_per_frame"`
}

// Sample is one reading.
type Sample struct {
	Frame     int     `json:"frame"`
	RSS       int64   `json:"rss_bytes"`
	HeapInuse uint64  `json:"go_heap_inuse_bytes"`
	Elapsed   float64 `json:"elapsed_s"`
}

func (cfg Config) Run(ctx context.Context, stdout io.Writer) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Pipeline == nil {
		return nil, fmt.Errorf("%w: memory needs a pipeline", bench.ErrConfig)
	}
	path := cfg.Image
	if path == "" {
		pairs, err := bench.ReadPairs(cfg.PairsFile, 1)
		if err != nil {
			return nil, err
		}
		path = filepath.Join(cfg.Root, pairs[0].A)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	img, _, err := imageio.DecodeBytes(data, imageio.Limits{})
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	p := cfg.Pipeline
	rep := &Report{Kind: "memory", Machine: bench.NewMachine(cfg.Build), Detector: p.Det.Model().Manifest().Name,
		Embedder: p.Emb.Model().Manifest().Name, Image: path, Threads: cfg.Threads, Asked: cfg.Frames}
	fmt.Fprintf(stdout, "facegate bench -memory: %s + %s on %s, %d frames (at most %s), RSS every %d\n",
		rep.Detector, rep.Embedder, path, cfg.Frames, cfg.MaxTime, cfg.SampleEvery)
	if _, err := p.EmbedPrimary(img); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	start := time.Now()
	sample := func(frame int) error {
		rss, err := bench.RSS()
		if err != nil {
			return err
		}
		var mst runtime.MemStats
		runtime.ReadMemStats(&mst)
		s := Sample{Frame: frame, RSS: rss, HeapInuse: mst.HeapInuse, Elapsed: bench.Round3(time.Since(start).Seconds())}
		rep.Samples = append(rep.Samples, s)
		fmt.Fprintf(stdout, "frame %6d  RSS %7.1f MiB  Go heap in use %6.1f MiB  %6.1f s\n", frame, float64(rss)/(1<<20), float64(mst.HeapInuse)/(1<<20), s.Elapsed)
		return nil
	}
	frame := 0
	for frame < cfg.Frames {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if time.Since(start) > cfg.MaxTime {
			fmt.Fprintf(stdout, "stopping after %s (-max-time)\n", cfg.MaxTime)
			break
		}
		if _, err := p.EmbedPrimary(img); err != nil {
			return nil, fmt.Errorf("frame %d: %w", frame, err)
		}
		frame++
		if frame%cfg.SampleEvery == 0 {
			if err := sample(frame); err != nil {
				return nil, err
			}
		}
	}
	if len(rep.Samples) == 0 || rep.Samples[len(rep.Samples)-1].Frame != frame {
		if err := sample(frame); err != nil {
			return nil, err
		}
	}
	rep.Frames = frame
	rep.MSPerFrm = bench.Round3(bench.MS(time.Since(start)) / float64(max(frame, 1)))
	first := rep.Samples[0]
	for _, s := range rep.Samples {
		if s.Frame >= 1000 {
			first = s
			break
		}
	}
	last := rep.Samples[len(rep.Samples)-1]
	rep.RSSFirst, rep.RSSLast, rep.FirstAt, rep.LastAt = first.RSS, last.RSS, first.Frame, last.Frame
	rep.GrowthPct = bench.Round3(100 * float64(last.RSS-first.RSS) / float64(first.RSS))
	rep.Machine.Finish()
	fmt.Fprintf(stdout, "RSS %.1f MiB at frame %d, %.1f MiB at frame %d: %+.2f %% (%.1f ms/frame)\n",
		float64(first.RSS)/(1<<20), first.Frame, float64(last.RSS)/(1<<20), last.Frame, rep.GrowthPct, rep.MSPerFrm)
	fmt.Fprintf(stdout, "machine: %s\n", rep.Machine.Describe())
	return rep, nil
}
