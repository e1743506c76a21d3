package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/facegate/facegate/daemon"
	"github.com/facegate/facegate/eval"
	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/detect"
	"github.com/facegate/facegate/infer/imageio"
	"github.com/facegate/facegate/infer/quality"
)

// gateQuality is the daemon's quality gate with its defaults
// (FACEGATE_QUALITY_* in daemon/config.go, the exposure limits of
// daemon/service.go): the faces the daemon scores with PAD are those that
// pass it.
func gateQuality() quality.Thresholds {
	return quality.Thresholds{MinInterOcular: 30, MinSharpness: 20, MaxYaw: 35, MaxPitch: 30, MaxRoll: 30,
		MinMeanLuma: 40, MaxMeanLuma: 220, MaxClipped: 0.25}
}

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
	allFaces := fs.Bool("all-faces", false, "score every face that passes the daemon's quality gate (default thresholds; the sharpness on -model's chip), not only the largest face of each image: each is a presentation")
	gate := fs.Bool("quality-gate", true, "with -all-faces: score only the faces that pass the daemon's quality gate (false: every face the detector finds)")
	calibrate := fs.String("calibrate", "", "comma-separated target BPCERs: fit a p_real threshold for each on the bona fide presentations, checked across a split by group (the folders below bona_fide/)")
	calGroups := fs.String("calibrate-groups", "", "with -calibrate: a regular expression; only the bona fide groups whose name matches it are fitted (default all)")
	calOut := fs.String("calibration-out", "", "with -calibrate: write the thresholds as the daemon's PAD calibration (FACEGATE_PAD_CALIBRATION) here")
	calSource := fs.String("calibration-source", "", "with -calibration-out: the provenance text written into it")
	cropContext := fs.String("crop-context", "fit", "measurement only: fit (the authors' rule, what the daemon does: the crop scale shrinks until it fits the frame), edge or black (the frame is first padded, repeating its edge pixels or with zeros, so every model gets its trained crop scale)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: facegate pad-eval -root DIR [-threshold P] [-all-faces] [-calibrate B,...] [-calibration-out pad.json] [-json OUT.json] [-plot OUT.svg] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	padMode, padded := map[string]imageio.PadMode{"edge": imageio.PadEdge, "black": imageio.PadBlack}[*cropContext]
	if !padded && *cropContext != "fit" {
		return fmt.Errorf("pad-eval: -crop-context %q: want fit, edge or black", *cropContext)
	}
	if padded && *calOut != "" {
		return fmt.Errorf("pad-eval: -crop-context %s is a measurement; the daemon crops with fit, so no calibration is written from it", *cropContext)
	}
	if *root == "" || fs.NArg() > 0 || (*calOut != "" && *calibrate == "") {
		fs.Usage()
		return errUsage
	}
	var bpcers []float64
	for _, f := range strings.Split(*calibrate, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		var b float64
		if _, err := fmt.Sscan(f, &b); err != nil || !(b > 0 && b < 1) {
			return fmt.Errorf("pad-eval: -calibrate %q: want rates in (0,1)", f)
		}
		bpcers = append(bpcers, b)
	}
	open := mf.openDetector
	if *allFaces {
		open = mf.open // the quality gate's sharpness is measured on the embedder's chip
	}
	pipe, closePipe, err := open()
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
	// context pads img (with -crop-context edge|black) so that the largest
	// crop of any face fits, and shifts the boxes to match.
	context := func(img *imageio.RGB, faces []infer.Face) (*imageio.RGB, []detect.Box, error) {
		boxes := make([]detect.Box, len(faces))
		side := 0.0
		for i, f := range faces {
			boxes[i] = f.Box
			side = max(side, f.Box.W(), f.Box.H())
		}
		if !padded {
			return img, boxes, nil
		}
		p := int(math.Ceil(3*side)) + 2 // a 4.0x crop reaches 2x the side beyond the centre; box mappings enlarge it
		out, err := imageio.Pad(img, p, padMode)
		if err != nil {
			return nil, nil, err
		}
		for i := range boxes {
			b := &boxes[i]
			b.X0, b.Y0, b.X1, b.Y1 = b.X0+float64(p), b.Y0+float64(p), b.X1+float64(p), b.Y1+float64(p)
		}
		return out, boxes, nil
	}
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
		largest := []infer.Face{*infer.Largest(faces)}
		cimg, boxes, err := context(img, largest)
		if err != nil {
			return 0, fmt.Errorf("pad %s: %w", path, err)
		}
		res, err := pad.Score(cimg, boxes[0])
		if err != nil {
			return 0, fmt.Errorf("pad %s: %w", path, err)
		}
		return res.PReal, nil
	}
	qth := gateQuality()
	var include func(string) bool
	if *calGroups != "" {
		re, err := regexp.Compile(*calGroups)
		if err != nil {
			return fmt.Errorf("pad-eval: -calibrate-groups: %w", err)
		}
		include = re.MatchString
	}
	scoreFaces := func(path string) ([]eval.PADFace, error) {
		img, err := decodeFile(path)
		if err != nil {
			return nil, err
		}
		faces, err := pipe.Detect(img)
		if err != nil {
			return nil, fmt.Errorf("detect %s: %w", path, err)
		}
		cimg, boxes, err := context(img, faces)
		if err != nil {
			return nil, fmt.Errorf("pad %s: %w", path, err)
		}
		var out []eval.PADFace
		for i := range faces {
			q, err := pipe.Assess(img, &faces[i], qth)
			if err != nil {
				return nil, fmt.Errorf("quality %s: %w", path, err)
			}
			if !q.OK && *gate {
				continue
			}
			res, err := pad.Score(cimg, boxes[i])
			if err != nil {
				return nil, fmt.Errorf("pad %s: %w", path, err)
			}
			out = append(out, eval.PADFace{Score: res.PReal, Ungated: !q.OK})
		}
		return out, nil
	}
	var progress io.Writer
	if eval.IsTerminal(os.Stderr) {
		progress = os.Stderr
	}
	cfg := eval.PADConfig{Root: *root, Threshold: *threshold, Score: score, Progress: progress}
	if *allFaces {
		cfg.Score, cfg.ScoreFaces = nil, scoreFaces
	}
	r, err := eval.RunPAD(ctx, cfg)
	if err != nil {
		return fmt.Errorf("pad-eval: %w", err)
	}
	if err := r.WriteText(stdout); err != nil {
		return err
	}
	if len(bpcers) > 0 {
		c, err := eval.PADCalibrate(r.Scores, bpcers, include)
		if err != nil {
			return fmt.Errorf("pad-eval: %w", err)
		}
		if err := c.WriteText(stdout); err != nil {
			return err
		}
		if *calOut != "" {
			if err := writePADCalibration(*calOut, c, dirs, pipe.Det.Model().Manifest().Name, *calSource); err != nil {
				return fmt.Errorf("pad-eval: %w", err)
			}
		}
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

// writePADCalibration writes the thresholds fitted on all the bona fide
// presentations as the daemon's PAD calibration file (daemon.PADCalibration),
// rounded down to 3 decimals (never above the fitted one), and reads it back through the daemon's loader.
func writePADCalibration(path string, c *eval.PADCalibration, padDirs []string, detector, source string) error {
	out := daemon.PADCalibration{Detector: detector, Source: source}
	for _, d := range padDirs {
		out.Models = append(out.Models, filepath.Base(d))
	}
	if out.Source == "" {
		out.Source = fmt.Sprintf("facegate pad-eval -calibrate: %d bona fide faces in %d groups", c.Presentations, c.Groups)
	}
	for _, p := range c.Points {
		out.Thresholds = append(out.Thresholds, daemon.PADThreshold{BPCER: p.TargetBPCER, PReal: math.Floor(p.Threshold*1000) / 1000, Faces: c.Presentations})
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return err
	}
	if _, err := daemon.LoadPADCalibration(path); err != nil {
		return fmt.Errorf("the calibration written does not load: %w", err)
	}
	return nil
}
