package vec

import (
	"math"
	"math/rand/v2"
	"testing"
)

func randVec(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// close64 checks got against a float64 reference within float32 rounding
// of a sum whose terms' magnitudes add up to scale.
func close64(t *testing.T, what string, got float32, ref, scale float64) {
	t.Helper()
	if d := math.Abs(float64(got) - ref); d > 1e-5*scale+1e-30 {
		t.Errorf("%s = %v, want %v (diff %.3g, scale %.3g)", what, got, ref, d, scale)
	}
}

// bothPaths runs f with the assembly kernels (where this machine has them)
// and with the Go loops.
func bothPaths(t *testing.T, f func(t *testing.T)) {
	had := useAsm
	t.Cleanup(func() { useAsm = had })
	if had {
		t.Run("asm", f)
	}
	useAsm = false
	t.Run("go", f)
}

func TestDotRows(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for _, dim := range []int{1, 3, 7, 8, 16, 24, 31, 32, 40, 64, 96, 128, 136, 512, 2048} {
			for _, n := range []int{1, 2, 5, 17} {
				q := randVec(rng, dim)
				rows := randVec(rng, n*dim+3) // longer than needed: only n rows are read
				out := make([]float32, n+1)
				out[n] = 42
				DotRows(q, rows, out[:n])
				if out[n] != 42 {
					t.Fatalf("dim %d n %d: wrote past out", dim, n)
				}
				for i := range n {
					var ref, scale float64
					for j := range dim {
						p := float64(q[j]) * float64(rows[i*dim+j])
						ref += p
						scale += math.Abs(p)
					}
					close64(t, "dot", out[i], ref, scale)
					if d := Dot(q, rows[i*dim:(i+1)*dim]); d != out[i] {
						t.Errorf("dim %d row %d: Dot %v != DotRows %v", dim, i, d, out[i])
					}
				}
			}
		}
	})
}

func TestDotRowsEdges(t *testing.T) {
	DotRows([]float32{1}, nil, nil) // no rows: nothing to do
	out := []float32{7, 7}
	DotRows(nil, nil, out)
	if out[0] != 0 || out[1] != 0 {
		t.Fatalf("empty probe: %v, want zeros", out)
	}
	if Dot(nil, []float32{1}) != 0 {
		t.Fatal("Dot of empty")
	}
	if got := Dot([]float32{1, 2, 3}, []float32{4, 5}); got != 14 {
		t.Fatalf("Dot over the common length = %v, want 14", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("short rows did not panic")
		}
	}()
	DotRows(make([]float32, 8), make([]float32, 15), make([]float32, 2))
}

func TestSum(t *testing.T) {
	bothPaths(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		for _, n := range []int{0, 1, 7, 31, 32, 33, 63, 64, 65, 96, 127, 128, 1000, 4096, 100003} {
			d := randVec(rng, n)
			var ref, scale float64
			for _, v := range d {
				ref += float64(v)
				scale += math.Abs(float64(v))
			}
			close64(t, "sum", Sum(d), ref, scale)
		}
		ones := make([]float32, 1003)
		for i := range ones {
			ones[i] = 1
		}
		if s := Sum(ones); s != 1003 {
			t.Fatalf("sum of 1003 ones = %v", s)
		}
	})
}

// The kernels against each other and against the bound, 128-d rows as the
// dlib model's, per gallery size that fits in cache and one that does not.
func BenchmarkDotRows(b *testing.B) {
	for _, c := range []struct {
		name      string
		dim, rows int
	}{{"128x1k", 128, 1000}, {"128x100k", 128, 100000}, {"2048x1k", 2048, 1000}} {
		rng := rand.New(rand.NewPCG(5, 6))
		q, rows, out := randVec(rng, c.dim), randVec(rng, c.dim*c.rows), make([]float32, c.rows)
		for _, path := range []string{"asm", "go"} {
			if path == "asm" && !useAsm {
				continue
			}
			b.Run(c.name+"/"+path, func(b *testing.B) {
				had := useAsm
				useAsm = path == "asm"
				defer func() { useAsm = had }()
				b.SetBytes(int64(len(rows) * 4))
				for b.Loop() {
					DotRows(q, rows, out)
				}
			})
		}
		b.Run(c.name+"/sum", func(b *testing.B) {
			b.SetBytes(int64(len(rows) * 4))
			for b.Loop() {
				sink += Sum(rows)
			}
		})
	}
}

var sink float32
