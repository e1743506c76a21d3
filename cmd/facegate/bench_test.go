package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facegate/facegate/bench/matching"
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
