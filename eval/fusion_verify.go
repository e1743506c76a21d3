package eval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/facegate/facegate/decision"
)

// FusionVerification is 1:1 verification of one subset of towers.
type FusionVerification struct {
	Towers string `json:"towers"`
	// Accuracy on the LFW pairs: each fold scored by the head fitted on
	// the other folds (and the extra pairs), at the threshold that is best
	// on the other folds.
	Accuracy Accuracy `json:"accuracy"`
	// EER and TAR at FAR 1e-3 on the LFW pairs (1,500 impostor pairs),
	// out-of-fold logits pooled.
	EER       float64        `json:"eer"`
	TARAtFAR3 OperatingPoint `json:"lfw_pairs_far_1e-3"`
	// On every pair of images of each fold: all cross-identity pairs
	// (impostors) and all same-identity pairs (genuine), out-of-fold
	// logits pooled.
	AllImpostors int            `json:"all_pairs_impostors"`
	AllGenuine   int            `json:"all_pairs_genuine"`
	AllEER       float64        `json:"all_pairs_eer"`
	AllFAR3      OperatingPoint `json:"all_pairs_far_1e-3"`
	AllFMR4      OperatingPoint `json:"all_pairs_fmr_1e-4"`
	ROC          []ROCPoint     `json:"-"`
}

// fusionFit is the final fusion: towers normalised on every fold's
// impostors, one head per subset fitted on every pair.
type fusionFit struct {
	towers []decision.Tower
	heads  map[string]decision.Head
	keys   []string
	idx    [][]int
}

// scorer fuses raw scores of a subset.
func (f *fusionFit) logit(key int, raw func(t int) float64) float64 {
	h := f.heads[f.keys[key]]
	l := h.Bias
	for i, t := range f.idx[key] {
		l += h.Weights[i] * f.towers[t].Z(raw(t))
	}
	return l
}

// pairSet is labelled image pairs and each tower's raw score of them.
type pairSet struct {
	pairs []labelled
	raw   [][]float32 // [tower][pair]
}

func (d *fusionData) score(pairs []labelled) pairSet {
	ps := pairSet{pairs: pairs, raw: make([][]float32, len(d.towers))}
	for t := range d.towers {
		r := make([]float32, len(pairs))
		for i, p := range pairs {
			r[i] = float32(d.raw(t, p.a, p.b))
		}
		ps.raw[t] = r
	}
	return ps
}

func (c FusionConfig) verification(ctx context.Context, d *fusionData) ([]FusionVerification, *fusionFit, error) {
	plan, err := Folds(c.LFW, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("fusion: %w", err)
	}
	k := len(plan.Folds)
	// The official pairs, -1 for an image not acquired.
	type official struct {
		a, b int
		same bool
	}
	lfw := make([][]official, k)
	foldImgs := make([]map[int]bool, k)
	for f, idx := range plan.Folds {
		foldImgs[f] = map[int]bool{}
		for _, i := range idx {
			p := c.LFW[i]
			a, okA := d.index[p.A]
			b, okB := d.index[p.B]
			if !okA || !okB {
				a, b = -1, -1
			} else {
				foldImgs[f][a], foldImgs[f][b] = true, true
			}
			lfw[f] = append(lfw[f], official{a, b, p.Same})
		}
	}
	// Every pair of images of each fold.
	gen := make([]pairSet, k)
	imp := make([]pairSet, k)
	for f := range k {
		var imgs []int
		for i := range foldImgs[f] {
			imgs = append(imgs, i)
		}
		sort.Ints(imgs)
		var g, m []labelled
		for x, a := range imgs {
			for _, b := range imgs[x+1:] {
				if d.ident[a] < 0 || d.ident[b] < 0 {
					continue // dropped by the errata
				}
				if d.ident[a] == d.ident[b] {
					g = append(g, labelled{a, b, true})
				} else {
					m = append(m, labelled{a, b, false})
				}
			}
		}
		gen[f], imp[f] = d.score(g), d.score(m)
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		c.Log("fusion: fold %d: %d images, %d genuine and %d impostor pairs", f+1, len(imgs), len(g), len(m))
	}
	var extra []labelled
	for _, p := range c.Extra {
		a, okA := d.index[p.A]
		b, okB := d.index[p.B]
		if okA && okB {
			extra = append(extra, labelled{a, b, p.Same})
		}
	}
	extraSet := d.score(extra)
	idx, keys := subsets(d.towers)
	rng := rand.New(rand.NewPCG(c.Seed, 1))

	// towersOn normalises each tower on the impostors of the given folds.
	towersOn := func(folds []int) ([]decision.Tower, error) {
		out := make([]decision.Tower, len(d.towers))
		for t, tw := range d.towers {
			var s, ss float64
			n := 0
			for _, f := range folds {
				for _, v := range imp[f].raw[t] {
					s += float64(v)
					ss += float64(v) * float64(v)
					n++
				}
			}
			if n < 2 {
				return nil, errors.New("fusion: no impostor pairs to normalise on")
			}
			mean := s / float64(n)
			out[t] = decision.Tower{Name: tw.Name, Model: tw.Model, Metric: tw.Metric, Flip: tw.Flip, ImpostorMean: mean, ImpostorStd: math.Sqrt(ss/float64(n) - mean*mean)}
		}
		return out, nil
	}
	// train fits one head per subset on the given folds and the extra pairs.
	train := func(folds []int) (*fusionFit, error) {
		tw, err := towersOn(folds)
		if err != nil {
			return nil, err
		}
		fit := &fusionFit{towers: tw, heads: map[string]decision.Head{}, keys: keys, idx: idx}
		var rows [][]float64 // raw per tower
		var ys []bool
		addSet := func(ps pairSet, take []int) {
			for _, i := range take {
				r := make([]float64, len(d.towers))
				for t := range d.towers {
					r[t] = float64(ps.raw[t][i])
				}
				rows, ys = append(rows, r), append(ys, ps.pairs[i].same)
			}
		}
		all := func(n int) []int {
			s := make([]int, n)
			for i := range s {
				s[i] = i
			}
			return s
		}
		for _, f := range folds {
			addSet(gen[f], all(len(gen[f].pairs)))
			n := len(imp[f].pairs)
			take := make([]int, min(5000, n))
			for i := range take {
				take[i] = rng.IntN(n)
			}
			addSet(imp[f], take)
		}
		addSet(extraSet, all(len(extra)))
		for s, key := range keys {
			z := make([][]float64, len(rows))
			for i, r := range rows {
				z[i] = make([]float64, len(idx[s]))
				for j, t := range idx[s] {
					z[i][j] = tw[t].Z(r[t])
				}
			}
			h, err := fitLogistic(z, ys)
			if err != nil {
				return nil, fmt.Errorf("fusion: head %s: %w", key, err)
			}
			fit.heads[key] = h
		}
		return fit, nil
	}

	out := make([]FusionVerification, len(keys))
	type pooled struct{ lfw, all Scores }
	pool := make([]pooled, len(keys))
	for s := range keys {
		out[s].Towers = keys[s]
		pool[s].lfw = Scores{Kind: "logit", HigherIsMatch: true}
		pool[s].all = Scores{Kind: "logit", HigherIsMatch: true}
	}
	for f := range k {
		var others []int
		for g := range k {
			if g != f {
				others = append(others, g)
			}
		}
		fit, err := train(others)
		if err != nil {
			return nil, nil, err
		}
		for s := range keys {
			// The accuracy threshold: best on the other folds' official pairs.
			var trS []float64
			var trY []bool
			for _, g := range others {
				for _, p := range lfw[g] {
					if p.a >= 0 {
						trS = append(trS, fit.logit(s, func(t int) float64 { return d.raw(t, p.a, p.b) }))
						trY = append(trY, p.same)
					}
				}
			}
			th, trainAcc := accThreshold(trS, trY)
			right, fta := 0, 0
			for _, p := range lfw[f] {
				r := Result{Same: p.same, Acquired: p.a >= 0}
				if r.Acquired {
					r.Score = fit.logit(s, func(t int) float64 { return d.raw(t, p.a, p.b) })
				} else {
					fta++
				}
				if (r.Acquired && r.Score >= th) == p.same {
					right++
				}
				pool[s].lfw.Results = append(pool[s].lfw.Results, r)
			}
			out[s].Accuracy.Folds = append(out[s].Accuracy.Folds, FoldResult{Fold: f + 1, Pairs: len(lfw[f]), FTA: fta, Threshold: th, TrainAccuracy: trainAcc, Accuracy: float64(right) / float64(len(lfw[f]))})
			for _, ps := range []pairSet{gen[f], imp[f]} {
				for i, p := range ps.pairs {
					l := fit.logit(s, func(t int) float64 { return float64(ps.raw[t][i]) })
					pool[s].all.Results = append(pool[s].all.Results, Result{Score: l, Same: p.same, Acquired: true})
				}
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
	}
	for s := range keys {
		v := &out[s]
		summarize(&v.Accuracy)
		roc, err := ROC(pool[s].lfw)
		if err != nil {
			return nil, nil, err
		}
		v.EER = EER(roc)
		if v.TARAtFAR3, err = AtFAR(pool[s].lfw, 1e-3); err != nil {
			return nil, nil, err
		}
		for _, r := range pool[s].all.Results {
			if r.Same {
				v.AllGenuine++
			} else {
				v.AllImpostors++
			}
		}
		if v.ROC, err = ROC(pool[s].all); err != nil {
			return nil, nil, err
		}
		v.AllEER = EER(v.ROC)
		if v.AllFAR3, err = AtFAR(pool[s].all, 1e-3); err != nil {
			return nil, nil, err
		}
		if v.AllFMR4, err = AtFMR(pool[s].all, 1e-4); err != nil {
			return nil, nil, err
		}
		pool[s].all.Results = nil
	}
	all := make([]int, k)
	for f := range all {
		all[f] = f
	}
	final, err := train(all)
	if err != nil {
		return nil, nil, err
	}
	return out, final, nil
}

// summarize fills the mean and spreads of per-fold accuracies.
func summarize(a *Accuracy) {
	n := float64(len(a.Folds))
	var s float64
	for _, f := range a.Folds {
		s += f.Accuracy
	}
	a.Mean = s / n
	var ss float64
	for _, f := range a.Folds {
		ss += (f.Accuracy - a.Mean) * (f.Accuracy - a.Mean)
	}
	if n > 1 {
		a.Std = math.Sqrt(ss / (n - 1))
	}
	a.StdPop = math.Sqrt(ss / n)
	a.StdErr = a.Std / math.Sqrt(n)
}

// accThreshold is the threshold (score >= t is a match) with the best
// accuracy on the scores, the midpoint between two neighbouring scores,
// and that accuracy.
func accThreshold(s []float64, same []bool) (float64, float64) {
	idx := make([]int, len(s))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return s[idx[a]] < s[idx[b]] })
	// Threshold below everything: all accepted.
	right := 0
	for _, y := range same {
		if y {
			right++
		}
	}
	best, bestAt := right, math.Inf(-1)
	for j, i := range idx {
		// Move the threshold above s[i]: i is now rejected.
		if same[i] {
			right--
		} else {
			right++
		}
		if j+1 < len(idx) && s[idx[j+1]] == s[i] {
			continue
		}
		if right > best {
			best = right
			if j+1 < len(idx) {
				bestAt = (s[i] + s[idx[j+1]]) / 2
			} else {
				bestAt = math.Nextafter(s[i], math.Inf(1))
			}
		}
	}
	if math.IsInf(bestAt, -1) && len(idx) > 0 {
		bestAt = s[idx[0]]
	}
	return bestAt, float64(best) / float64(max(len(s), 1))
}

// fitLogistic fits P(same) = sigmoid(b + w·z) by Newton's method, the two
// classes weighted equally, with a small ridge on w.
func fitLogistic(z [][]float64, same []bool) (decision.Head, error) {
	if len(z) == 0 {
		return decision.Head{}, errors.New("no training pairs")
	}
	d := len(z[0])
	var np, nn float64
	for _, y := range same {
		if y {
			np++
		} else {
			nn++
		}
	}
	if np == 0 || nn == 0 {
		return decision.Head{}, errors.New("training pairs of one class only")
	}
	wPos, wNeg := float64(len(z))/(2*np), float64(len(z))/(2*nn)
	const ridge = 1e-3
	beta := make([]float64, d+1) // bias, weights
	for range 50 {
		g := make([]float64, d+1)
		h := make([][]float64, d+1)
		for i := range h {
			h[i] = make([]float64, d+1)
		}
		x := make([]float64, d+1)
		for i, zi := range z {
			x[0] = 1
			copy(x[1:], zi)
			eta := 0.0
			for j := range x {
				eta += beta[j] * x[j]
			}
			p := decision.Sigmoid(eta)
			y, w := 0.0, wNeg
			if same[i] {
				y, w = 1, wPos
			}
			for j := range x {
				g[j] += w * (y - p) * x[j]
				for l := range x {
					h[j][l] += w * p * (1 - p) * x[j] * x[l]
				}
			}
		}
		n := float64(len(z))
		for j := 1; j <= d; j++ {
			g[j] -= ridge * n * beta[j]
			h[j][j] += ridge * n
		}
		step, err := solve(h, g)
		if err != nil {
			return decision.Head{}, err
		}
		var sz float64
		for j := range beta {
			beta[j] += step[j]
			sz += math.Abs(step[j])
		}
		if sz < 1e-10 {
			break
		}
	}
	return decision.Head{Bias: beta[0], Weights: beta[1:]}, nil
}

// solve solves a x = b by Gaussian elimination with partial pivoting.
func solve(a [][]float64, b []float64) ([]float64, error) {
	n := len(b)
	m := make([][]float64, n)
	for i := range m {
		m[i] = append(append([]float64(nil), a[i]...), b[i])
	}
	for c := range n {
		p := c
		for r := c + 1; r < n; r++ {
			if math.Abs(m[r][c]) > math.Abs(m[p][c]) {
				p = r
			}
		}
		if math.Abs(m[p][c]) < 1e-300 {
			return nil, errors.New("singular system")
		}
		m[c], m[p] = m[p], m[c]
		for r := c + 1; r < n; r++ {
			f := m[r][c] / m[c][c]
			for j := c; j <= n; j++ {
				m[r][j] -= f * m[c][j]
			}
		}
	}
	x := make([]float64, n)
	for i := n - 1; i >= 0; i-- {
		s := m[i][n]
		for j := i + 1; j < n; j++ {
			s -= m[i][j] * x[j]
		}
		x[i] = s / m[i][i]
	}
	return x, nil
}
