package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/facegate/facegate/eval"
	"github.com/facegate/facegate/eval/pipeline"
)

// cmdEval parses `facegate eval` and hands the work to package eval:
// verification on pairs, one-shot identification, calibration, scores
// files of other systems and plots of several reports.
func cmdEval(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && (args[0] == "-enrollment" || args[0] == "--enrollment") {
		return cmdEvalEnrollment(ctx, args[1:], stdout)
	}
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	var mf modelFlags
	mf.register(fs)
	pairsFile := fs.String("pairs", "", "pairs file: a<TAB>b<TAB>same(1/0), paths relative to -root")
	root := fs.String("root", "", "folder the image paths are relative to")
	folds := fs.Int("folds", 0, "cross-validation folds (0: the file's LFW folds, else 10)")
	var out eval.Outputs
	fs.StringVar(&out.JSON, "json", "", "write the report as JSON here")
	fs.StringVar(&out.Plot, "plot", "", "write ROC and DET curves as SVG here")
	calibrate := fs.Bool("calibrate", false, "write thresholds for FMR 1e-2, 1e-3, 1e-4 (where the data allows) into the model's manifest")
	fs.StringVar(&out.Scores, "scores", "", "write every pair's score as TSV here (a, b, same, acquired, score): the input of models/train_head.py")
	var cal eval.CalibrateConfig
	fs.StringVar(&cal.ThresholdsOut, "thresholds-out", "", "with -calibrate: also write the model's calibration (thresholds and head) as JSON here, e.g. models/calibration/NAME.json")
	fs.IntVar(&cal.Impostors, "impostors", 0, "with -calibrate: add this many random impostor pairs (different identities of the same source, among the images found) to the calibration only, so low FMR targets (1e-4 needs 10,000) can be measured")
	scoresIn := fs.String("scores-in", "", "evaluate a scores file (as -scores writes, e.g. from a peer system under bench/) instead of running the models")
	plotFrom := fs.String("plot-from", "", "comma-separated report JSON files (from -json): plot their ROC/DET curves together into -plot, then exit")
	label := fs.String("label", "", "with -scores-in: the system's name in the report")
	dataset := fs.String("dataset", "", "name of the data set for the report and calibration (default: the pairs file name)")
	identify := fs.Bool("identify", false, "one-shot identification instead of pairs: enrol K images per person from -root/<identity>/ folders, identify the rest")
	source := fs.String("source", "", "with -identify: only identity folders starting with this prefix (e.g. celeb5__)")
	ks := []int{1, 3, 5}
	fs.Var(intList{&ks}, "k", "with -identify: enrolment sizes")
	var fusion fusionFlags
	fusion.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: facegate eval -pairs FILE -root DIR [flags]\n       facegate eval -identify -root DIR [-source PREFIX] [flags]\n       facegate eval -scores-in FILE [-label NAME] [flags]\n       facegate eval -plot-from A.json,B.json -plot OUT.svg")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	switch {
	case *plotFrom != "":
		if out.Plot == "" {
			fmt.Fprintln(fs.Output(), "facegate eval: -plot-from needs -plot OUT.svg")
			return errUsage
		}
		return eval.PlotReports(out.Plot, strings.Split(*plotFrom, ","))
	case *scoresIn != "":
		rep, err := eval.ScoresFileConfig{Path: *scoresIn, Label: *label, Dataset: *dataset, Folds: *folds}.Run()
		if err != nil {
			return err
		}
		if err := rep.WriteTable(stdout); err != nil {
			return err
		}
		return rep.Save(eval.Outputs{JSON: out.JSON, Plot: out.Plot})
	case fusion.on && *root != "":
		return runFusion(ctx, &fusion, mf, *root, args, stdout)
	case *root == "" || (*pairsFile == "" && !*identify):
		fs.Usage()
		return errUsage
	}
	p, closeModels, err := mf.open()
	if err != nil {
		return err
	}
	defer closeModels()
	emb := pipeline.New(p, mf.batch)
	if *identify {
		rep, err := eval.IdentifyConfig{Root: *root, Source: *source, Ks: ks, Embedder: emb, Progress: os.Stderr}.Run(ctx)
		if err != nil {
			return err
		}
		if err := rep.WriteTable(stdout); err != nil || out.JSON == "" {
			return err
		}
		return rep.Save(out.JSON)
	}
	v, err := eval.VerifyConfig{PairsFile: *pairsFile, Root: *root, Dataset: *dataset, Folds: *folds, Embedder: emb, Progress: os.Stderr}.Run(ctx)
	if err != nil {
		return err
	}
	if err := v.Report.WriteTable(stdout); err != nil {
		return err
	}
	if err := v.WriteSummary(stdout); err != nil {
		return err
	}
	if err := v.Save(out); err != nil {
		return err
	}
	if *calibrate {
		cal.ModelDir = emb.ModelDir()
		_, err := v.Calibrate(cal, stdout)
		return err
	}
	return nil
}
