package infer

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

func randBatch(rng *rand.Rand, shape ...int64) Float32Batch {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	b := Float32Batch{Shape: shape, Data: make([]float32, n)}
	for i := range b.Data {
		b.Data[i] = 255 * rng.Float32()
	}
	return b
}

func cloneResult(r map[string]Float32Batch) map[string]Float32Batch {
	out := make(map[string]Float32Batch, len(r))
	for k, v := range r {
		out[k] = Float32Batch{Shape: slices.Clone(v.Shape), Data: slices.Clone(v.Data)}
	}
	return out
}

func sameResult(t *testing.T, what string, got, want map[string]Float32Batch) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: outputs %v, want %v", what, sortedKeys(got), sortedKeys(want))
	}
	for k, w := range want {
		g := got[k]
		if !slices.Equal(g.Shape, w.Shape) || !slices.Equal(g.Data, w.Data) {
			t.Fatalf("%s: output %q is %v %v, want %v %v", what, k, g.Shape, g.Data, w.Shape, w.Data)
		}
	}
}

// TestFeedReuse: runs that copy their inputs into kept tensors give exactly
// what fresh tensors give, whatever ran before (no value of one run shows in
// another), for one input and two, whole and split into batches; the kept
// tensor is really reused and TensorFlow leaves its memory as fed.
func TestFeedReuse(t *testing.T) {
	for _, maxBatch := range []int{0, 2} {
		t.Run(fmt.Sprintf("maxbatch=%d", maxBatch), func(t *testing.T) {
			m, _ := loadTiny(t, Options{IntraOpThreads: 1, InterOpThreads: 1, MaxBatch: maxBatch})
			fresh, _ := loadTiny(t, Options{IntraOpThreads: 1, InterOpThreads: 1, MaxBatch: maxBatch, FreshInputTensors: true})
			rng := rand.New(rand.NewPCG(3, 4))
			var kept []map[string]Float32Batch // every result, checked again at the end
			var wants []map[string]Float32Batch
			run := func(what, sig string, in map[string]Float32Batch) {
				t.Helper()
				want, err := fresh.RunFloat32(sig, in)
				if err != nil {
					t.Fatal(err)
				}
				got, err := m.RunFloat32(sig, in)
				if err != nil {
					t.Fatal(err)
				}
				sameResult(t, what, got, want)
				kept, wants = append(kept, got), append(wants, cloneResult(want))
			}
			for round := range 3 {
				for _, rows := range []int64{1, 3, 2, 3} {
					run(fmt.Sprintf("round %d, %d rows", round, rows), "serving_default",
						map[string]Float32Batch{"images": randBatch(rng, rows, 16, 16, 3)})
				}
				run(fmt.Sprintf("round %d, pair", round), "pair",
					map[string]Float32Batch{"a": randBatch(rng, int64(2+round%2), 8), "b": randBatch(rng, int64(2+round%2), 8)})
			}
			for i := range kept {
				sameResult(t, fmt.Sprintf("result %d after later runs", i), kept[i], wants[i])
			}
			if n := fresh.idleFeeds(); n != 0 {
				t.Errorf("fresh tensors: %d idle input sets kept", n)
			}
			if n := m.idleFeeds(); n == 0 || n > maxIdleFeeds {
				t.Fatalf("%d idle input sets, want 1..%d", n, maxIdleFeeds)
			}

			// The same shape again takes the same set, and after the run
			// its memory still holds the input (no kernel wrote into it).
			in := randBatch(rng, 1, 16, 16, 3)
			if _, err := m.RunFloat32("serving_default", map[string]Float32Batch{"images": in}); err != nil {
				t.Fatal(err)
			}
			set := m.lastIdle()
			if _, err := m.RunFloat32("serving_default", map[string]Float32Batch{"images": in}); err != nil {
				t.Fatal(err)
			}
			if again := m.lastIdle(); again != set || set.views == nil {
				t.Fatalf("input set not reused: %p then %p (views %v)", set, again, set.views != nil)
			}
			if !slices.Equal(set.views[0], in.Data) {
				t.Fatal("the kept input tensor does not hold the last input")
			}
		})
	}
}

func (m *Model) lastIdle() *feedSet {
	m.idleMu.Lock()
	defer m.idleMu.Unlock()
	if len(m.idle) == 0 {
		return nil
	}
	return m.idle[len(m.idle)-1]
}

// TestFeedReuseConcurrent: goroutines sharing one Model, each with its own
// inputs of the same shape, always get their own results (run with -race).
func TestFeedReuseConcurrent(t *testing.T) {
	m, _ := loadTiny(t, Options{IntraOpThreads: 1, InterOpThreads: 1})
	fresh, _ := loadTiny(t, Options{IntraOpThreads: 1, InterOpThreads: 1, FreshInputTensors: true})
	const workers, runs = 4, 40
	ins := make([]map[string]Float32Batch, workers)
	wants := make([]map[string]Float32Batch, workers)
	rng := rand.New(rand.NewPCG(5, 6))
	for w := range ins {
		ins[w] = map[string]Float32Batch{"images": randBatch(rng, 2, 16, 16, 3)}
		var err error
		if wants[w], err = fresh.RunFloat32("serving_default", ins[w]); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range runs {
				got, err := m.RunFloat32("serving_default", ins[w])
				if err != nil {
					errs <- err
					return
				}
				for k, want := range wants[w] {
					if !slices.Equal(got[k].Data, want.Data) {
						errs <- fmt.Errorf("worker %d run %d: %s differs from its own input's result", w, i, k)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := m.idleFeeds(); n < 1 || n > min(workers, maxIdleFeeds) {
		t.Errorf("%d idle input sets after %d concurrent workers", n, workers)
	}
}

// TestFeedIdleBound: many shapes keep at most maxIdleFeeds sets; Close
// lets them go.
func TestFeedIdleBound(t *testing.T) {
	m, _ := loadTiny(t, Options{IntraOpThreads: 1, InterOpThreads: 1})
	rng := rand.New(rand.NewPCG(7, 8))
	for rows := int64(1); rows <= maxIdleFeeds+4; rows++ {
		if _, err := m.RunFloat32("serving_default", map[string]Float32Batch{"images": randBatch(rng, rows, 16, 16, 3)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.idleFeeds(); n != maxIdleFeeds {
		t.Fatalf("%d idle input sets, want %d", n, maxIdleFeeds)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if n := m.idleFeeds(); n != 0 {
		t.Fatalf("%d idle input sets after Close", n)
	}
}
