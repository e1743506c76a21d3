package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/facegate/facegate/eval"
	"github.com/facegate/facegate/infer"
)

// cmdPADEval parses `facegate pad-eval`: score a labelled folder
// (bona_fide/, attack/<species>/) with the detector and the PAD models and
// report APCER per species, BPCER and ACER (package eval, docs/pad.md).
func cmdPADEval(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("pad-eval", flag.ContinueOnError)
	var mf modelFlags
	mf.register(fs)
	root := fs.String("root", "", "labelled folder: bona_fide/** and attack/<species>/** images")
	threshold := fs.Float64("threshold", 0.5, "bona fide when p_real >= this")
	padModels := fs.String("pad-models", "minifasnet-v2,minifasnet-v1se", "comma-separated PAD models: names under -models or paths")
	jsonOut := fs.String("json", "", "write the report (with every presentation's score) as JSON here")
	plotOut := fs.String("plot", "", "write the DET plot (BPCER against APCER per species) as SVG here")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: facegate pad-eval -root DIR [-threshold P] [-json OUT.json] [-plot OUT.svg] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if *root == "" || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	pipe, closePipe, err := mf.openDetector()
	if err != nil {
		return fmt.Errorf("pad-eval: %w", err)
	}
	defer closePipe()
	var dirs []string
	for _, n := range strings.Split(*padModels, ",") {
		if n = strings.TrimSpace(n); n != "" {
			dirs = append(dirs, mf.path(n))
		}
	}
	pad, closePAD, err := infer.OpenPAD(dirs, mf.options(), infer.PADConfig{Detector: pipe.Det.Model().Manifest().Name})
	if err != nil {
		return fmt.Errorf("pad-eval: %w", err)
	}
	defer closePAD()
	score := func(path string) (float64, error) {
		img, err := decodeFile(path)
		if err != nil {
			return 0, err
		}
		faces, err := pipe.Detect(img)
		if err != nil {
			return 0, fmt.Errorf("detect %s: %w", path, err)
		}
		if len(faces) == 0 {
			return 0, fmt.Errorf("%s: %w", path, infer.ErrNoFace)
		}
		res, err := pad.Score(img, infer.Largest(faces).Box)
		if err != nil {
			return 0, fmt.Errorf("pad %s: %w", path, err)
		}
		return res.PReal, nil
	}
	var progress io.Writer
	if eval.IsTerminal(os.Stderr) {
		progress = os.Stderr
	}
	r, err := eval.RunPAD(ctx, eval.PADConfig{Root: *root, Threshold: *threshold, Score: score, Progress: progress})
	if err != nil {
		return fmt.Errorf("pad-eval: %w", err)
	}
	if err := r.WriteText(stdout); err != nil {
		return err
	}
	if *jsonOut != "" {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return fmt.Errorf("pad-eval: %w", err)
		}
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("pad-eval: %w", err)
		}
	}
	if *plotOut != "" {
		f, err := os.Create(*plotOut)
		if err != nil {
			return fmt.Errorf("pad-eval: %w", err)
		}
		if err := r.WriteDETSVG(f, "facegate pad-eval: "+*root); err != nil {
			f.Close()
			return fmt.Errorf("pad-eval: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("pad-eval: %w", err)
		}
	}
	return nil
}
