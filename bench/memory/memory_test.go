package memory

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/facegate/facegate/bench"
	"github.com/facegate/facegate/infer"
)

// A smoke test of 4 frames sampled every 2: the report must have the
// right shape. No growth is asserted; `make bench-memory` measures.
func TestMemorySmoke(t *testing.T) {
	data := infer.TestDataDir(t)
	det := infer.TestModelDir(t, "blazeface-short")
	emb := infer.TestModelDir(t, "dlib-resnet-v1")
	p, closeFn, err := infer.OpenPipeline(det, emb, infer.Options{IntraOpThreads: 1, InterOpThreads: 1, CPUOnly: true}, infer.DetectorConfig{}, 0.25)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	var out bytes.Buffer
	rep, err := Config{Pipeline: p, PairsFile: filepath.Join(data, "pairs-lfw-folds1-5.tsv"), Root: filepath.Join(data, "faces"),
		Frames: 4, SampleEvery: 2, MaxTime: time.Minute, Threads: 1}.Run(context.Background(), &out)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Kind != "memory" || rep.Frames != 4 || len(rep.Samples) != 2 || rep.Samples[1].Frame != 4 || filepath.Base(rep.Image) != "001.jpg" {
		t.Fatalf("report: %+v", rep)
	}
	if rep.RSSFirst <= 0 || rep.RSSLast <= 0 || rep.FirstAt != 2 || rep.LastAt != 4 || rep.Samples[0].HeapInuse == 0 {
		t.Fatalf("rss: %+v", rep)
	}
}

func TestMemoryConfig(t *testing.T) {
	for _, c := range []Config{{}, {Image: "x", Frames: 1, SampleEvery: 1, MaxTime: time.Second}} {
		if _, err := c.Run(context.Background(), &bytes.Buffer{}); !errors.Is(err, bench.ErrConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}
