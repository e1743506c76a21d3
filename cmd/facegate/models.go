package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"text/tabwriter"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/manifest"
)

func cmdVersion(_ context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	fmt.Fprintf(stdout, "facegate %s\nlibtensorflow %s\n", Version(), tf.Version())
	return nil
}

func cmdModels(_ context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("models", flag.ContinueOnError)
	threads := fs.Int("threads", 0, "TensorFlow intra-op threads (0 = one per core)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return errUsage
	}
	root := os.Getenv(infer.ModelsDirEnv)
	if fs.NArg() > 0 {
		root = fs.Arg(0)
	}
	if root == "" {
		root = filepath.Join("build", "models")
	}
	matches, err := filepath.Glob(filepath.Join(root, "*", manifest.File))
	if err != nil {
		return fmt.Errorf("list models in %s: %w", root, err)
	}
	if len(matches) == 0 {
		return fmt.Errorf("no models in %s (run `make models`)", root)
	}
	sort.Strings(matches)
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tVERSION\tTASK\tINPUT\tDIM\tMETRIC\tWEIGHTS\tSIGNATURES\tLOAD")
	var failed int
	for _, mf := range matches {
		dir := filepath.Dir(mf)
		m, err := infer.Load(dir, infer.Options{IntraOpThreads: *threads})
		if err != nil {
			failed++
			fmt.Fprintf(w, "%s\t-\t-\t-\t-\t-\t-\tERROR: %v\t-\n", filepath.Base(dir), err)
			continue
		}
		man := m.Manifest()
		sigs := make([]string, 0)
		for s := range m.Signatures() {
			sigs = append(sigs, s)
		}
		sort.Strings(sigs)
		fmt.Fprintf(w, "%s\t%s\t%s\t%dx%d\t%d\t%s\t%s\t%v\t%s\n", man.Name, man.Version, man.Task,
			man.Input.Width, man.Input.Height, man.EmbeddingDim, man.Metric, man.Weights, sigs, m.LoadTime().Round(1e6))
		m.Close()
	}
	w.Flush()
	if failed > 0 {
		return fmt.Errorf("%d of %d models failed to load", failed, len(matches))
	}
	return nil
}
