package infer_test

import (
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"

	"github.com/facegate/facegate/infer"
)

// BenchmarkEmbedFlip times one face through Embedder.EmbedChips per tower,
// plain and with flip test-time augmentation (docs/benchmarks.md, Flip
// test-time augmentation), with the daemon's one intra-op thread and with
// one per core; compare ms/face of plain and flip (the figures of
// docs/benchmarks.md: -count 5, medians).
func BenchmarkEmbedFlip(b *testing.B) {
	for _, name := range []string{"dlib-resnet-v1", "sface-2021dec"} {
		for _, threads := range []int{1, runtime.NumCPU()} {
			b.Run(name+"/threads="+strconv.Itoa(threads), func(b *testing.B) {
				opts := benchOptions()
				opts.IntraOpThreads = threads
				m, err := infer.Load(infer.TestModelDir(b, name), opts)
				if err != nil {
					b.Fatal(err)
				}
				defer m.Close()
				benchFlip(b, m)
			})
		}
	}
}

func benchFlip(b *testing.B, m *infer.Model) {
	e, err := infer.NewEmbedder(m)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	chip := make([]float32, e.ChipLen())
	for i := range chip {
		chip[i] = 255 * rng.Float32()
	}
	for _, flip := range []bool{false, true} {
		mode := "plain"
		if flip {
			mode = "flip"
		}
		b.Run(mode, func(b *testing.B) {
			e.SetFlip(flip)
			defer e.SetFlip(false)
			if _, err := e.EmbedChips(chip, 1); err != nil { // warm-up
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := e.EmbedChips(chip, 1); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/face")
		})
	}
}
