package pipeline

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facegate/facegate/eval"
	"github.com/facegate/facegate/infer"
)

func open(t *testing.T, batch int) *Embedder {
	t.Helper()
	det := infer.TestModelDir(t, "blazeface-short")
	emb := infer.TestModelDir(t, "dlib-resnet-v1")
	p, closeFn, err := infer.OpenPipeline(det, emb, infer.Options{IntraOpThreads: 1, InterOpThreads: 1}, infer.DetectorConfig{MinScore: 0.5}, 0.25)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeFn)
	return New(p, batch)
}

// TestEmbed: a face, no face and a missing file, batched or not.
func TestEmbed(t *testing.T) {
	root := filepath.Join("..", "..", "testdata")
	images := []string{"astronaut.jpg", "coffee.jpg", "missing.jpg", "astronaut.jpg"}
	var got [2]map[string]eval.Embedding
	for i, batch := range []int{1, 4} {
		e := open(t, batch)
		done := 0
		res, err := e.Embed(context.Background(), root, images, func(n int) { done += n })
		if err != nil {
			t.Fatal(err)
		}
		// The repeated image is embedded twice (and counted twice).
		if done != len(images) || len(res) != 3 {
			t.Fatalf("batch %d: progress %d, %d results", batch, done, len(res))
		}
		a := res["astronaut.jpg"]
		if a.Err != nil || len(a.Vector) != e.Manifest().EmbeddingDim || a.NoFace {
			t.Fatalf("astronaut: %+v", a)
		}
		if c := res["coffee.jpg"]; c.Err == nil || !c.NoFace || c.Vector != nil {
			t.Errorf("coffee: %+v", c)
		}
		if m := res["missing.jpg"]; m.Err == nil || m.NoFace || !os.IsNotExist(m.Err) {
			t.Errorf("missing file: %+v", m)
		}
		got[i] = res
		if e.Detector() != "blazeface-short" || e.Manifest().Name != "dlib-resnet-v1" || !strings.HasSuffix(e.ModelDir(), "dlib-resnet-v1") {
			t.Errorf("models: %s %s %s", e.Detector(), e.Manifest().Name, e.ModelDir())
		}
	}
	// Batching does not change an embedding.
	var d float64
	for k, v := range got[0]["astronaut.jpg"].Vector {
		d = max(d, math.Abs(float64(v-got[1]["astronaut.jpg"].Vector[k])))
	}
	if d > 1e-4 {
		t.Errorf("batch 1 and 4 differ by %g", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := open(t, 1).Embed(ctx, root, images, nil); err == nil {
		t.Error("cancelled context ignored")
	}
}

// TestVerifyLFW: `facegate eval`'s run on the first 8 LFW pairs.
func TestVerifyLFW(t *testing.T) {
	data := infer.TestDataDir(t)
	b, err := os.ReadFile(filepath.Join(data, "pairs-lfw-folds1-5.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	// Fold 1: 300 genuine pairs, then 300 impostor pairs.
	lines := strings.SplitAfter(string(b), "\n")
	pairs := filepath.Join(t.TempDir(), "pairs.tsv")
	if err := os.WriteFile(pairs, []byte(strings.Join(append(lines[:4:4], lines[300:304]...), "")), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := eval.VerifyConfig{PairsFile: pairs, Root: filepath.Join(data, "faces"), Folds: 2, Embedder: open(t, 16)}.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r := v.Report
	if r.Pairs != 8 || !strings.HasPrefix(r.Model, "dlib-resnet-v1 ") || r.Same != 4 || r.ScoreKind != "euclidean" || len(v.Embeddings)+len(v.Failed) != len(v.Images) {
		t.Fatalf("report %+v", r)
	}
	// dlib's embeddings put genuine pairs within its usual 0.6 and
	// impostors farther on average.
	var gen, imp float64
	for i, res := range v.Scores.Results {
		if !res.Acquired {
			t.Errorf("pair %d: no face in an LFW image", i)
		} else if res.Same {
			gen += res.Score / 4
			if res.Score > 0.6 {
				t.Errorf("genuine pair %d: distance %.3f", i, res.Score)
			}
		} else {
			imp += res.Score / 4
		}
	}
	if imp <= gen {
		t.Errorf("impostor mean distance %.3f not above genuine %.3f", imp, gen)
	}
}
