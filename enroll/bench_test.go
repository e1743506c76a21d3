package enroll

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/facegate/facegate/infer/manifest"
	"github.com/facegate/facegate/internal/vec"
)

// 1:N matching cost against the memory-bandwidth bound of the same bytes
// (`make bench`; `facegate bench -matching` prints both side by side with
// their ratio). Galleries are built inside each sub-benchmark so that
// -bench filters skip the large ones (100k x 2048 is 1.6 GB).

var benchGalleries = []struct{ people, dim int }{
	{1000, 128}, {10000, 128}, {100000, 128},
	{1000, 2048}, {10000, 2048}, {100000, 2048},
}

func galleryName(people, dim int) string {
	return "people=" + strconv.Itoa(people) + "/dim=" + strconv.Itoa(dim)
}

// galleryBytes is what Identify reads per probe with one template per
// person (a single template is its own mean and is read once).
func galleryBytes(people, dim int) int64 { return int64(people) * int64(dim) * 4 }

// BenchmarkIdentifyGallery times Identify(probe, 5) with one template per
// person; MB/s is the rate at which it streams the templates.
func BenchmarkIdentifyGallery(b *testing.B) {
	for _, c := range benchGalleries {
		b.Run(galleryName(c.people, c.dim), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(uint64(c.people), uint64(c.dim)))
			m := NewMatcher(Scorer{Metric: manifest.MetricEuclidean, Dim: c.dim})
			for i := range c.people {
				if err := m.Put("p"+strconv.Itoa(i), "", [][]float32{unit(rng, c.dim)}); err != nil {
					b.Fatal(err)
				}
			}
			probe := unit(rng, c.dim)
			b.SetBytes(galleryBytes(c.people, c.dim))
			for b.Loop() {
				id, err := m.Identify(probe, 5)
				if err != nil {
					b.Fatal(err)
				}
				if len(id.Ranked) != 5 {
					b.Fatalf("%d ranked", len(id.Ranked))
				}
			}
		})
	}
}

var scanSink float32

// BenchmarkScanBound sums (vec.Sum, the SIMD kernel) as many contiguous bytes as
// BenchmarkIdentifyGallery reads, case for case: compare their MB/s.
func BenchmarkScanBound(b *testing.B) {
	for _, c := range benchGalleries {
		b.Run(galleryName(c.people, c.dim), func(b *testing.B) {
			n := galleryBytes(c.people, c.dim) / 4
			data := make([]float32, n)
			for i := range data {
				data[i] = float32(i&1023) * (1.0 / 1024)
			}
			b.SetBytes(n * 4)
			for b.Loop() {
				scanSink += vec.Sum(data)
			}
		})
	}
}
