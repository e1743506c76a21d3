package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facegate/facegate/eval"
)

// The evaluation is tested in eval and eval/pipeline; these tests check
// the command line of the modes that need no model: -scores-in and
// -plot-from, and refused command lines.

// scoresFile writes a scores file of 20 genuine and 20 impostor pairs.
func scoresFile(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# a\tb\tsame\tacquired\teuclidean\n")
	for i := range 20 {
		fmt.Fprintf(&b, "p%d/1.jpg\tp%d/2.jpg\t1\t1\t%.3f\n", i, i, 0.2+0.01*float64(i))
		fmt.Fprintf(&b, "p%d/1.jpg\tp%d/1.jpg\t0\t1\t%.3f\n", i, i+1, 0.35+0.02*float64(i))
	}
	b.WriteString("p99/1.jpg\tp99/2.jpg\t1\t0\t0.000000\n#fta\tp99/1.jpg\n")
	path := filepath.Join(t.TempDir(), "peer.scores.tsv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestEvalScoresInAndPlotFrom(t *testing.T) {
	dir := t.TempDir()
	js, svg := filepath.Join(dir, "peer.json"), filepath.Join(dir, "peer.svg")
	var stdout, stderr bytes.Buffer
	args := []string{"eval", "-scores-in", scoresFile(t), "-label", "peer 1", "-dataset", "test pairs", "-folds", "2", "-json", js, "-plot", svg}
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	var rep eval.Report
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Model != "peer 1" || rep.Dataset != "test pairs" || rep.Pairs != 41 || rep.ImagesFTA != 1 || len(rep.Accuracy.Folds) != 2 || len(rep.ROC) < 2 {
		t.Fatalf("report: %+v", rep)
	}
	if !strings.Contains(stdout.String(), "test pairs") {
		t.Errorf("no table:\n%s", stdout.String())
	}
	for _, f := range []string{svg, filepath.Join(dir, "both.svg")} {
		if f != svg {
			if err := run(context.Background(), []string{"eval", "-plot-from", js + "," + js, "-plot", f}, &stdout, &stderr); err != nil {
				t.Fatal(err)
			}
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := xml.Unmarshal(b, new(struct{})); err != nil || !bytes.Contains(b, []byte("peer 1 (")) || !bytes.Contains(b, []byte("facegate eval: test pairs")) {
			t.Errorf("%s: %v\n%.300s", f, err, b)
		}
	}
}

func TestEvalUsage(t *testing.T) {
	for _, args := range [][]string{
		{},                       // nothing to do
		{"-pairs", "x"},          // no root
		{"-identify"},            // no root
		{"-plot-from", "a.json"}, // no -plot
		{"-identify", "-root", "x", "-k", "0"},
	} {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), append([]string{"eval"}, args...), &stdout, &stderr); err != errUsage {
			t.Errorf("eval %v: %v, want a usage error", args, err)
		}
	}
}
