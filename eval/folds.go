package eval

import (
	"errors"
	"fmt"
)

// DefaultFolds is the number of folds of the LFW View-2 protocol, used for
// files without LFW block structure when no count is asked for.
const DefaultFolds = 10

// Fold schemes, as reported in FoldPlan.Scheme.
const (
	// SchemeBlocks: the file is in LFW View-2 order, fold i being a block
	// of n same pairs followed by a block of n different pairs.
	SchemeBlocks = "lfw-blocks"
	// SchemeRoundRobin: stratified round robin in file order; the j-th
	// same pair goes to fold j mod k, and so does the j-th different pair.
	SchemeRoundRobin = "stratified-round-robin"
)

// ErrFolds is wrapped when pairs cannot be split into the folds asked for.
var ErrFolds = errors.New("cannot split pairs into folds")

// FoldPlan assigns every pair to exactly one fold.
type FoldPlan struct {
	Scheme string
	// Folds[i] lists the indexes (into the pairs slice) of fold i, in
	// file order.
	Folds [][]int
}

// Of returns, for each pair index, its fold.
func (f FoldPlan) Of(n int) []int {
	out := make([]int, n)
	for i, idx := range f.Folds {
		for _, j := range idx {
			out[j] = i
		}
	}
	return out
}

// Folds splits pairs into folds for cross-validation.
//
// When the file has LFW View-2 block structure (runs of same/different
// pairs alternating, starting with same, all runs the same length, at least
// two same+different block pairs), each same block and the different block
// after it form one fold, as in the official protocol; this is used when k
// is 0 or equals the number of blocks. Otherwise pairs are assigned by
// stratified round robin in file order: the j-th same pair goes to fold
// j mod k, the j-th different pair to fold j mod k, so every fold gets the
// same share (±1) of each class and, since files list their sources in
// blocks, of each source. k = 0 means DefaultFolds, lowered to the size of
// the smaller class when that is smaller. Fewer than 2 folds, or a class
// with fewer pairs than folds, is an error wrapping ErrFolds.
func Folds(pairs []Pair, k int) (FoldPlan, error) {
	if k < 0 || k == 1 {
		return FoldPlan{}, fmt.Errorf("%w: %d folds asked for, need at least 2", ErrFolds, k)
	}
	if blocks := lfwBlocks(pairs); blocks != nil && (k == 0 || k == len(blocks)) {
		return FoldPlan{Scheme: SchemeBlocks, Folds: blocks}, nil
	}
	nSame, nDiff := 0, 0
	for _, p := range pairs {
		if p.Same {
			nSame++
		} else {
			nDiff++
		}
	}
	if k == 0 {
		k = min(DefaultFolds, nSame, nDiff)
	}
	if k < 2 || nSame < k || nDiff < k {
		return FoldPlan{}, fmt.Errorf("%w: %d folds need at least that many same and different pairs each; have %d same, %d different", ErrFolds, max(k, 2), nSame, nDiff)
	}
	folds := make([][]int, k)
	js, jd := 0, 0
	for i, p := range pairs {
		var f int
		if p.Same {
			f = js % k
			js++
		} else {
			f = jd % k
			jd++
		}
		folds[f] = append(folds[f], i)
	}
	return FoldPlan{Scheme: SchemeRoundRobin, Folds: folds}, nil
}

// lfwBlocks returns the folds of a file in LFW View-2 block order, or nil
// when the file is not in that order.
func lfwBlocks(pairs []Pair) [][]int {
	type run struct {
		same       bool
		start, len int
	}
	var runs []run
	for i, p := range pairs {
		if len(runs) > 0 && runs[len(runs)-1].same == p.Same {
			runs[len(runs)-1].len++
			continue
		}
		runs = append(runs, run{same: p.Same, start: i, len: 1})
	}
	if len(runs) < 4 || len(runs)%2 != 0 || !runs[0].same {
		return nil
	}
	for _, r := range runs {
		if r.len != runs[0].len {
			return nil
		}
	}
	folds := make([][]int, len(runs)/2)
	for f := range folds {
		start, n := runs[2*f].start, 2*runs[0].len
		idx := make([]int, n)
		for j := range idx {
			idx[j] = start + j
		}
		folds[f] = idx
	}
	return folds
}
