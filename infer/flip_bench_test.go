package infer_test

import (
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/facegate/facegate/infer"
)

// BenchmarkEmbedFlip times one face through Embedder.EmbedChips per tower,
// plain and with flip test-time augmentation (docs/benchmarks.md, Flip
// test-time augmentation), with the daemon's one intra-op thread and with
// one per core. Each iteration runs one plain call and one flip call on the
// same model, so both see the same load on a shared machine; it reports
// ms/face of each and their ratio.
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
	plain, err := infer.NewEmbedder(m)
	if err != nil {
		b.Fatal(err)
	}
	flip, err := infer.NewEmbedder(m)
	if err != nil {
		b.Fatal(err)
	}
	flip.SetFlip(true)
	rng := rand.New(rand.NewPCG(1, 2))
	chip := make([]float32, plain.ChipLen())
	for i := range chip {
		chip[i] = 255 * rng.Float32()
	}
	for _, e := range []*infer.Embedder{plain, flip} { // warm-up
		if _, err := e.EmbedChips(chip, 1); err != nil {
			b.Fatal(err)
		}
	}
	var tPlain, tFlip time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := plain.EmbedChips(chip, 1); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := flip.EmbedChips(chip, 1); err != nil {
			b.Fatal(err)
		}
		tPlain += t1.Sub(t0)
		tFlip += time.Since(t1)
	}
	b.ReportMetric(tPlain.Seconds()*1000/float64(b.N), "plain-ms/face")
	b.ReportMetric(tFlip.Seconds()*1000/float64(b.N), "flip-ms/face")
	b.ReportMetric(tFlip.Seconds()/tPlain.Seconds(), "flip/plain")
}
