package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/facegate/facegate/bench"
	"github.com/facegate/facegate/bench/e2e"
	"github.com/facegate/facegate/bench/embed"
	"github.com/facegate/facegate/bench/matching"
	"github.com/facegate/facegate/bench/memory"
	"github.com/facegate/facegate/infer"
)

// cmdBench parses `facegate bench` and runs one of the benchmarks under
// bench/: embedding speed (the default), -e2e, -matching, -memory or
// -tracking.
func cmdBench(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var bf benchFlags
	bf.register(fs)
	e2eMode := fs.Bool("e2e", false, "per face end to end (read+decode → detect → align → embed → 1:N match) on the images of -pairs")
	matchingMode := fs.Bool("matching", false, "1:N matching cost against a memory-bandwidth bound (a plain sum over the same bytes)")
	memoryMode := fs.Bool("memory", false, "RSS over many frames of detect+align+embed on one image")
	trackingMode := fs.Bool("tracking", false, "skipping detection with infer/track on real clips: fresh against tracked path, per frame (bench/tracking)")
	var tk trackFlags
	tk.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: facegate bench [-model NAME]... [-batch 1,4,16] [-threads N] [-duration D | -iters N] [-python] [-json OUT]\n"+
			"       facegate bench -e2e -pairs FILE -root DIR [-pairs-limit N] [-peer-timing FILE]\n"+
			"       facegate bench -matching [-people 1000,10000,100000] [-dims 128,2048]\n"+
			"       facegate bench -memory -root DIR (-pairs FILE | -image FILE) [-frames N]\n"+
			"       facegate bench -tracking -clip FILE|DIR... [-track-threshold 2,4,6,8,12,16] [-track-max-frames 5,15] [-clip-frames N]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	modes := 0
	for _, b := range []bool{*e2eMode, *matchingMode, *memoryMode, *trackingMode} {
		if b {
			modes++
		}
	}
	if modes > 1 || fs.NArg() > 0 || bf.rounds < 1 || bf.iters < 0 || bf.warmup < 0 || bf.threads < 0 || bf.inter < 0 {
		fs.Usage()
		return errUsage
	}
	itersSet := false
	fs.Visit(func(f *flag.Flag) { itersSet = itersSet || f.Name == "iters" })
	if *matchingMode && !itersSet {
		bf.iters = 0 // -matching times by -duration unless -iters is given
	}
	if len(bf.names) == 0 {
		bf.names = stringList{"dlib-resnet-v1", "vggface2-resnet50"}
	}
	build := bench.Build{Facegate: Version(), TensorFlow: tf.Version()}
	var report any
	var err error
	switch {
	case *matchingMode:
		report, err = matching.Config{People: bf.people, Dims: bf.dims, Iters: bf.iters, Duration: bf.duration, Build: build}.Run(ctx, stdout)
	case *trackingMode:
		report, err = runTracking(ctx, &bf, &tk, build, stdout)
	case *e2eMode, *memoryMode:
		report, err = runPipelineBench(ctx, &bf, *e2eMode, build, stdout)
	default:
		models := make([]string, len(bf.names))
		for i, n := range bf.names {
			models[i] = bf.path(n)
		}
		report, err = embed.Config{Models: models, Batches: bf.batches, Threads: bf.threads, Inter: bf.inter, Iters: bf.iters,
			Duration: bf.duration, Rounds: bf.rounds, Warmup: bf.warmup, GPU: bf.gpu, FreshInputs: bf.fresh, Python: bf.python,
			PythonBin: bf.pythonBin, PythonScript: bf.pythonScript, Build: build}.Run(ctx, stdout)
	}
	if errors.Is(err, bench.ErrConfig) {
		fmt.Fprintln(fs.Output(), "facegate bench:", err)
		return errUsage
	}
	if err != nil {
		return err
	}
	if bf.jsonOut != "" {
		if err := bench.WriteJSON(bf.jsonOut, report); err != nil {
			return err
		}
		slog.Info("bench report written", "file", bf.jsonOut)
	}
	return nil
}

// openPipeline loads -detector and the first -model.
func (bf *benchFlags) openPipeline() (*infer.Pipeline, func(), error) {
	return infer.OpenPipeline(bf.path(bf.detector), bf.path(bf.names[0]), embed.Options(bf.threads, bf.inter, bf.gpu), infer.DetectorConfig{}, bf.pad)
}

// runPipelineBench runs -e2e or -memory on the pipeline of -detector and
// the first -model.
func runPipelineBench(ctx context.Context, bf *benchFlags, isE2E bool, build bench.Build, stdout io.Writer) (any, error) {
	e2eCfg := e2e.Config{PairsFile: bf.pairsFile, Root: bf.root, PairsLimit: bf.pairsLimit, Gallery: bf.gallery,
		PeerTiming: bf.peerTiming, Warmup: bf.warmup, Threads: bf.threads, Inter: bf.inter, Build: build}
	memCfg := memory.Config{Image: bf.image, PairsFile: bf.pairsFile, Root: bf.root, Frames: bf.frames,
		SampleEvery: bf.sampleEvery, MaxTime: bf.maxTime, Threads: bf.threads, Build: build}
	if err := e2eCfg.Validate(); isE2E && err != nil {
		return nil, err
	}
	if err := memCfg.Validate(); !isE2E && err != nil {
		return nil, err
	}
	p, closeFn, err := bf.openPipeline()
	if err != nil {
		return nil, err
	}
	defer closeFn()
	if isE2E {
		e2eCfg.Pipeline = p
		return e2eCfg.Run(ctx, stdout)
	}
	memCfg.Pipeline = p
	return memCfg.Run(ctx, stdout)
}
