package eval

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// lfwShaped builds a pairs list in LFW View-2 order: per fold, n same
// pairs then n different pairs.
func lfwShaped(folds, n int) []Pair {
	var pairs []Pair
	for f := range folds {
		for i := range n {
			pairs = append(pairs, Pair{A: fmt.Sprintf("f%d/s%d_a.jpg", f, i), B: fmt.Sprintf("f%d/s%d_b.jpg", f, i), Same: true})
		}
		for i := range n {
			pairs = append(pairs, Pair{A: fmt.Sprintf("f%d/d%d_a.jpg", f, i), B: fmt.Sprintf("f%d/d%d_b.jpg", f, i)})
		}
	}
	return pairs
}

// runs builds pairs from alternating run lengths, starting with same.
func runs(lengths ...int) []Pair {
	var pairs []Pair
	for r, n := range lengths {
		for i := range n {
			pairs = append(pairs, Pair{A: fmt.Sprintf("r%d/%d_a", r, i), B: fmt.Sprintf("r%d/%d_b", r, i), Same: r%2 == 0})
		}
	}
	return pairs
}

func TestFoldsLFWBlocks(t *testing.T) {
	for _, tc := range []struct {
		name         string
		folds, n, k  int
		wantScheme   string
		wantFoldSize int
	}{
		{"official 10x300", 10, 300, 0, SchemeBlocks, 600},
		{"shared folds 1-5", 5, 300, 0, SchemeBlocks, 600},
		{"k equal to blocks", 5, 300, 5, SchemeBlocks, 600},
		{"k differs: round robin", 10, 300, 5, SchemeRoundRobin, 1200},
		{"tiny 3x2", 3, 2, 0, SchemeBlocks, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pairs := lfwShaped(tc.folds, tc.n)
			plan, err := Folds(pairs, tc.k)
			if err != nil {
				t.Fatal(err)
			}
			if plan.Scheme != tc.wantScheme {
				t.Fatalf("scheme %s, want %s", plan.Scheme, tc.wantScheme)
			}
			checkPartition(t, plan, len(pairs))
			for f, idx := range plan.Folds {
				if len(idx) != tc.wantFoldSize {
					t.Errorf("fold %d has %d pairs, want %d", f, len(idx), tc.wantFoldSize)
				}
				same := 0
				for _, j := range idx {
					if pairs[j].Same {
						same++
					}
				}
				if same != tc.wantFoldSize/2 {
					t.Errorf("fold %d has %d same pairs, want %d", f, same, tc.wantFoldSize/2)
				}
				if tc.wantScheme == SchemeBlocks {
					// Fold f is exactly the f-th same block and the different block after it.
					for i, j := range idx {
						if want := f*2*tc.n + i; j != want {
							t.Fatalf("fold %d item %d is pair %d, want %d", f, i, j, want)
						}
					}
				}
			}
		})
	}
}

func TestFoldsRoundRobin(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pairs   []Pair
		k       int
		wantK   int
		wantErr bool
	}{
		// pairs-extra.tsv: balanced per source, runs of unequal length.
		{name: "pairs-extra shape", pairs: runs(600, 600, 80, 80, 75, 75, 75, 75, 14, 14), wantK: 10},
		{name: "starts with different", pairs: runs(0, 300, 300, 300, 300), wantK: 10},
		{name: "one block pair is not LFW", pairs: runs(300, 300), wantK: 10},
		{name: "small file lowers k", pairs: runs(4, 3), wantK: 3},
		{name: "explicit k", pairs: runs(600, 600, 80, 80), k: 4, wantK: 4},
		{name: "k above class size", pairs: runs(3, 3), k: 4, wantErr: true},
		{name: "one class only", pairs: runs(5), wantErr: true},
		{name: "k=1", pairs: runs(5, 5), k: 1, wantErr: true},
		{name: "negative k", pairs: runs(5, 5), k: -2, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := Folds(tc.pairs, tc.k)
			if tc.wantErr {
				if !errors.Is(err, ErrFolds) {
					t.Fatalf("want ErrFolds, got %v (%+v)", err, plan)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if plan.Scheme != SchemeRoundRobin || len(plan.Folds) != tc.wantK {
				t.Fatalf("got %s with %d folds, want %s with %d", plan.Scheme, len(plan.Folds), SchemeRoundRobin, tc.wantK)
			}
			checkPartition(t, plan, len(tc.pairs))
			// Stratified: per class, fold sizes differ by at most one.
			for _, same := range []bool{true, false} {
				lo, hi := len(tc.pairs), 0
				for _, idx := range plan.Folds {
					n := 0
					for _, j := range idx {
						if tc.pairs[j].Same == same {
							n++
						}
					}
					lo, hi = min(lo, n), max(hi, n)
				}
				if hi-lo > 1 {
					t.Errorf("same=%v: fold sizes range %d..%d", same, lo, hi)
				}
			}
			// Deterministic.
			again, _ := Folds(tc.pairs, tc.k)
			if !reflect.DeepEqual(plan, again) {
				t.Error("fold assignment is not deterministic")
			}
		})
	}
}

// checkPartition: every pair in exactly one fold, each fold in file order.
func checkPartition(t *testing.T, plan FoldPlan, n int) {
	t.Helper()
	seen := make([]int, n)
	for _, idx := range plan.Folds {
		for i, j := range idx {
			seen[j]++
			if i > 0 && idx[i-1] >= j {
				t.Fatalf("fold not in file order at %d", j)
			}
		}
	}
	for j, c := range seen {
		if c != 1 {
			t.Fatalf("pair %d is in %d folds", j, c)
		}
	}
	of := plan.Of(n)
	for f, idx := range plan.Folds {
		for _, j := range idx {
			if of[j] != f {
				t.Fatalf("Of(%d) = %d, want %d", j, of[j], f)
			}
		}
	}
}
