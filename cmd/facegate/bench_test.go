package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facegate/facegate/bench/embed"
	"github.com/facegate/facegate/bench/matching"
	"github.com/facegate/facegate/infer"
)

// The benchmarks are tested in their packages under bench/; these tests
// check the command line: flags reach the Config, the report is written,
// bad command lines are refused.

func TestBenchMatchingCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"bench", "-matching", "-people", "10,50", "-dims", "8", "-iters", "3", "-json", out}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("facegate bench -matching: %v\n%s", err, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep matching.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Kind != "matching" || len(rep.Cases) != 2 || rep.Cases[1].People != 50 || rep.Cases[0].Dim != 8 || rep.Cases[0].Iters != 3 || rep.Machine.TensorFlow == "" || rep.Machine.Facegate == "" {
		t.Fatalf("report: %+v", rep)
	}
	if !strings.Contains(stdout.String(), "facegate bench -matching") {
		t.Errorf("stdout:\n%s", stdout.String())
	}
}

func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{
		{"-e2e", "-matching"},        // two modes at once
		{"-tracking", "-memory"},     // two modes at once
		{"-batch", "0"},              // not a positive batch
		{"-rounds", "0"},             // no round
		{"-e2e", "-root", "x"},       // no pairs file
		{"-memory"},                  // no image
		{"-tracking"},                // no clip
		{"-matching", "-people", ""}, // no gallery size
		{"-tracking", "-clip", "x", "-track-threshold", "0"},
		{"-tracking", "-clip", "x", "-track-threshold", "x"},
		{"-tracking", "-clip", "x", "-track-max-frames", "0"},
		{"-tracking", "-clip", "x", "-ref-frames", "0"},
		{"-tracking", "-clip", "x@10x10"},
	} {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), append([]string{"bench"}, args...), &stdout, &stderr); err != errUsage {
			t.Errorf("bench %v: %v, want a usage error", args, err)
		}
	}
}

// TestBenchFreshInputs: -fresh-inputs reaches the Go side's session options
// and the report says which input path ran (issue 17).
func TestBenchFreshInputs(t *testing.T) {
	model := infer.TestModelDir(t, "test-tiny")
	for _, fresh := range []bool{false, true} {
		out := filepath.Join(t.TempDir(), "bench.json")
		args := []string{"bench", "-model", model, "-batch", "1", "-iters", "1", "-rounds", "1", "-threads", "1", "-json", out}
		if fresh {
			args = append(args, "-fresh-inputs")
		}
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), args, &stdout, &stderr); err != nil {
			t.Fatalf("facegate %v: %v\n%s", args, err, stderr.String())
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var rep embed.Report
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Settings.FreshInputs != fresh || len(rep.Models) != 1 || len(rep.Models[0].Batches) != 1 {
			t.Fatalf("-fresh-inputs %v: settings %+v, %d models", fresh, rep.Settings, len(rep.Models))
		}
		if want := fmt.Sprintf("fresh input tensors %v", fresh); !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
		}
	}
}
