package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facegate/facegate/bench"
	"github.com/facegate/facegate/infer"
)

// config points at the shared LFW data and the pipeline's models.
func config(t *testing.T) Config {
	t.Helper()
	data := infer.TestDataDir(t)
	det := infer.TestModelDir(t, "blazeface-short")
	emb := infer.TestModelDir(t, "dlib-resnet-v1")
	p, closeFn, err := infer.OpenPipeline(det, emb, infer.Options{IntraOpThreads: 1, InterOpThreads: 1, CPUOnly: true}, infer.DetectorConfig{}, 0.25)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeFn)
	return Config{Pipeline: p, PairsFile: filepath.Join(data, "pairs-lfw-folds1-5.tsv"), Root: filepath.Join(data, "faces"),
		Threads: 1, Inter: 1, Warmup: 1, Build: bench.Build{Facegate: "test"}}
}

// A smoke test on the images of 2 pairs: the report must have the right
// shape and consistent counts, and the peer's timing file is compared.
// No timings are asserted; `make bench-e2e` measures.
func TestE2ESmoke(t *testing.T) {
	cfg := config(t)
	abs, err := filepath.Abs(cfg.PairsFile)
	if err != nil {
		t.Fatal(err)
	}
	// A peer timing file for the same 4 images (those of pairs 1-2).
	peer := filepath.Join(t.TempDir(), "peer.timing.json")
	pt := map[string]any{
		"system": "face_recognition", "pairs_file": abs, "pairs": 2, "images": 4, "faces": 4, "fta": 0,
		"settings":         map[string]any{"threads": 1},
		"machine":          map[string]any{"loadavg_start": []float64{1, 1, 1}, "loadavg_end": []float64{1, 1, 1}},
		"per_face_wall_ms": map[string]any{"total": map[string]any{"n": 4, "mean": 1000.0}},
		"per_face_cpu_ms":  map[string]any{"total": map[string]any{"n": 4, "mean": 900.0}},
	}
	b, _ := json.Marshal(pt)
	if err := os.WriteFile(peer, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.PairsLimit, cfg.Gallery, cfg.PeerTiming = 2, 20, peer
	var out bytes.Buffer
	rep, err := cfg.Run(context.Background(), &out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Kind != "e2e" || rep.Pairs != 2 || rep.Images != 4 || rep.Faces+rep.FTA != 4 || rep.Faces == 0 || rep.Gallery != 20 {
		t.Fatalf("report: %+v", rep)
	}
	for _, s := range []string{"decode", "detect", "align", "embed", "match", "total"} {
		if rep.PerFace[s].N != rep.Faces || rep.PerFace[s].Mean <= 0 {
			t.Errorf("stage %s: %+v", s, rep.PerFace[s])
		}
	}
	if tot := rep.PerFace["total"].Mean; tot < rep.PerFace["embed"].Mean || tot < rep.PerFace["detect"].Mean {
		t.Errorf("total %v below a stage: %+v", tot, rep.PerFace)
	}
	if rep.Peer == nil || !rep.Peer.SameImages || rep.Peer.SpeedupWall <= 0 || rep.Peer.WallMean != 1000 {
		t.Fatalf("peer: %+v", rep.Peer)
	}
	if !strings.Contains(out.String(), "facegate is ") {
		t.Errorf("output:\n%s", out.String())
	}
	// Without the peer's file: one line says so.
	cfg.PeerTiming = filepath.Join(t.TempDir(), "none.json")
	out.Reset()
	if rep, err := cfg.Run(context.Background(), &out); err != nil || rep.Peer != nil || !strings.Contains(out.String(), "peer: no timing file") {
		t.Errorf("without a peer file: %v, %+v\n%s", err, rep, out.String())
	}
}

func TestE2EConfig(t *testing.T) {
	for _, c := range []Config{{}, {PairsFile: "x", Root: "y", Gallery: 1}} {
		if _, err := c.Run(context.Background(), &bytes.Buffer{}); !errors.Is(err, bench.ErrConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}
