package matching

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/facegate/facegate/bench"
	"github.com/facegate/facegate/enroll"
	"github.com/facegate/facegate/internal/vec"
)

// Config is one -matching run: every gallery size at every dimension.
type Config struct {
	People []int // gallery sizes
	Dims   []int // template dimensions
	// Iters is the number of timed calls of each side per case; 0 times
	// as many as fit in Duration (at least 3, at most 1000).
	Iters    int
	Duration time.Duration
	Build    bench.Build
}

// Report is the JSON of -matching.
type Report struct {
	Kind    string        `json:"kind"`
	Machine bench.Machine `json:"machine"`
	Cases   []Case        `json:"cases"`
}

// Case is one gallery size and dimension. Bytes counts what Identify reads
// per probe (one template per person, its own mean); the bound sums as
// many bytes laid out contiguously.
type Case struct {
	People        int         `json:"people"`
	Dim           int         `json:"dim"`
	Bytes         int64       `json:"bytes"`
	IdentifyMS    bench.Stats `json:"identify_ms"`
	BoundMS       bench.Stats `json:"scan_bound_ms"`
	IdentifyGBps  float64     `json:"identify_gb_per_s"`
	BoundGBps     float64     `json:"scan_bound_gb_per_s"`
	Ratio         float64     `json:"ratio"` // identify / bound p50; target ≤ 2
	Iters         int         `json:"iters"`
	LoadavgBefore float64     `json:"loadavg_1m"`
}

// Validate rejects empty or non-positive sizes.
func (c Config) Validate() error {
	if len(c.People) == 0 || len(c.Dims) == 0 || c.Iters < 0 || (c.Iters == 0 && c.Duration <= 0) {
		return fmt.Errorf("%w: matching needs gallery sizes, dimensions and iterations or a duration", bench.ErrConfig)
	}
	for _, n := range append(append([]int(nil), c.People...), c.Dims...) {
		if n <= 0 {
			return fmt.Errorf("%w: matching: size %d is not positive", bench.ErrConfig, n)
		}
	}
	return nil
}

// Run measures every case, printing a table on w.
func (c Config) Run(ctx context.Context, w io.Writer) (*Report, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	rep := &Report{Kind: "matching", Machine: bench.NewMachine(c.Build)}
	fmt.Fprintf(w, "facegate bench -matching: Identify(probe, k=5), one template per person (read once: a single template is its own mean), Euclidean\n")
	fmt.Fprintf(w, "%8s %5s %10s  %-26s %-26s %s\n", "people", "dim", "MB read", "identify ms p50 (GB/s)", "scan bound ms p50 (GB/s)", "ratio")
	for _, dim := range c.Dims {
		for _, people := range c.People {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			mb, err := c.one(people, dim)
			if err != nil {
				return nil, err
			}
			rep.Cases = append(rep.Cases, *mb)
			fmt.Fprintf(w, "%8d %5d %10.1f  %9.3f (%6.2f)          %9.3f (%6.2f)          %.2f\n", people, dim,
				float64(mb.Bytes)/1e6, mb.IdentifyMS.P50, mb.IdentifyGBps, mb.BoundMS.P50, mb.BoundGBps, mb.Ratio)
		}
	}
	rep.Machine.Finish()
	fmt.Fprintf(w, "machine: %s\n", rep.Machine.Describe())
	return rep, nil
}

// timePair times f and g alternately, call for call, Iters times or as
// many as fit in Duration (counting both), at least 3.
func (c Config) timePair(f, g func()) (tf, tg []float64) {
	f() // warm: page faults, caches
	g()
	t0 := time.Now()
	f()
	g()
	one := time.Since(t0)
	n := c.Iters
	if n == 0 {
		n = max(3, min(1000, int(c.Duration/max(one, time.Microsecond))))
	}
	tf, tg = make([]float64, n), make([]float64, n)
	for i := range n {
		t := time.Now()
		f()
		tf[i] = bench.MS(time.Since(t))
		t = time.Now()
		g()
		tg[i] = bench.MS(time.Since(t))
	}
	return tf, tg
}

var scanSink float32

func (c Config) one(people, dim int) (*Case, error) {
	// One template per person: Identify reads each template once (a single
	// template is its own mean).
	mb := &Case{People: people, Dim: dim, Bytes: int64(people) * int64(dim) * 4, LoadavgBefore: bench.Loadavg()[0]}
	sc := enroll.Scorer{Metric: "euclidean", Dim: dim}
	m, err := bench.RandomGallery(sc, people, uint64(people*31+dim))
	if err != nil {
		return nil, err
	}
	// The bound: the fastest plain scan of as many contiguous bytes (the
	// same SIMD sum kernel), timed call for call alternately with Identify
	// so that both see the same machine.
	data := make([]float32, int64(people)*int64(dim))
	for i := range data {
		data[i] = float32(i&1023) * (1.0 / 1024)
	}
	probe := make([]float32, dim)
	bench.RandomUnit(rand.New(rand.NewPCG(99, 100)), probe)
	var ierr error
	t, tb := c.timePair(func() {
		if _, err := m.Identify(probe, 5); err != nil {
			ierr = err
		}
	}, func() { scanSink += vec.Sum(data) })
	if ierr != nil {
		return nil, fmt.Errorf("identify among %d people: %w", people, ierr)
	}
	mb.BoundMS = bench.StatsOf(tb)
	mb.Iters = len(t)
	mb.IdentifyMS = bench.StatsOf(t)
	m, data = nil, nil
	runtime.GC()
	debug.FreeOSMemory()
	// Timer resolution: a sub-nanosecond median (tiny cases) counts as 1 ns.
	gbps := func(p50 float64) float64 { return bench.Round3(float64(mb.Bytes) / (max(p50, 1e-6) * 1e6)) }
	mb.IdentifyGBps, mb.BoundGBps = gbps(mb.IdentifyMS.P50), gbps(mb.BoundMS.P50)
	mb.Ratio = bench.Ratio(mb.IdentifyMS.P50, max(mb.BoundMS.P50, 1e-6))
	return mb, nil
}
