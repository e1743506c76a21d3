package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/facegate/facegate/eval"
	"github.com/facegate/facegate/eval/pipeline"
)

// cmdEvalEnrollment is `facegate eval -enrollment`: the enrollment-quality
// study of package eval (docs/enrollment.md) on identity folders.
func cmdEvalEnrollment(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("eval -enrollment", flag.ContinueOnError)
	var mf modelFlags
	mf.register(fs)
	var c eval.EnrollStudyConfig
	fs.StringVar(&c.Root, "root", "", "identity folders: ROOT/<identity>/<photos> (../shared/data/faces)")
	fs.StringVar(&c.Scenes, "scenes", "", "a folder of multi-face photos to report subject selection on (../shared/data/scenes)")
	fs.StringVar(&c.Source, "source", "lfw__", "only identity folders starting with this")
	fs.IntVar(&c.MaxPeople, "people", 0, "at most this many people (0: all with two photos or more)")
	fs.Float64Var(&c.FMR, "fmr", 1e-3, "the false-match rate whose calibrated threshold decides a match")
	fs.IntVar(&c.DegradeEvery, "degrade-every", 3, "add downscaled and blurred copies of every n-th person's photo (0: none)")
	fs.IntVar(&c.Compose, "compose", 200, "composed photos of each kind (a bystander behind the subject; two people side by side)")
	jsonOut := fs.String("json", "", "write the study (every photo with its measures, verdict and match rate) as JSON here")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: facegate eval -enrollment -root DIR [-scenes DIR] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if c.Root == "" {
		fs.Usage()
		return errUsage
	}
	p, closeModels, err := mf.open()
	if err != nil {
		return err
	}
	defer closeModels()
	emb := pipeline.New(p, mf.batch)
	c.Assessor, c.Embedder, c.Progress = emb, emb, os.Stderr
	st, err := c.Run(ctx)
	if err != nil {
		return err
	}
	if err := st.WriteTable(stdout); err != nil {
		return err
	}
	if *jsonOut != "" {
		return st.Save(*jsonOut)
	}
	return nil
}
