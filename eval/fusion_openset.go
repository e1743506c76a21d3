package eval

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/facegate/facegate/decision"
)

// OpenSetResult is open-set 1:N per visit for one subset of towers and
// one gallery size, pooled over the random galleries of both folds.
type OpenSetResult struct {
	Towers string `json:"towers"`
	N      int    `json:"gallery_size"`
	Trials int    `json:"galleries"`
	// Mated visits: someone enrolled from one photo, shown up to MaxFrames
	// other photos. Non-mated: someone not enrolled.
	Mated      int `json:"mated_visits"`
	MatedMulti int `json:"mated_multi_frame_visits"`
	NonMated   int `json:"non_mated_visits"`
	// NonMatedMulti: non-mated visits with more than one frame.
	NonMatedMulti int `json:"non_mated_multi_frame_visits"`
	// At the calibrated rule, per target FPIR.
	Calibrated []CalibratedPoint `json:"calibrated"`
	// FNIR at FPIR with the threshold swept on the test visits (as FRVT).
	Swept []SweptPoint `json:"swept"`
	DET   []DETPoint   `json:"det"`
}

// CalibratedPoint is what the decision package's rule did at the
// threshold the calibration gives for a target FPIR.
type CalibratedPoint struct {
	Target float64 `json:"target_fpir"`
	// Thresholds used, one per fold (each calibrated on the other half of
	// the identities).
	Thresholds  []float64 `json:"thresholds"`
	FalseGrants int       `json:"false_grants"` // non-mated visits granted
	// FalseVisitors: the distinct people behind the false grants (a
	// stranger with one photo makes the same visit in every gallery that
	// does not hold them, so false grants are not independent events).
	FalseVisitors []string `json:"false_visitors,omitempty"`
	FPIR          float64  `json:"fpir"`
	// FPIRMulti: FPIR of the non-mated visits with two or more frames
	// (strangers with two or more photos), the visits closest to a door's
	// visit of several looks; FPIR counts single-photo strangers too.
	FPIRMulti        float64 `json:"fpir_multi_frame"`
	FalseGrantsMulti int     `json:"false_grants_multi_frame"`
	// FNIR: mated visits not granted to their own identity.
	FNIR float64 `json:"fnir"`
	// WrongGrants: mated visits granted to someone else; WrongPairs names
	// them, "visitor -> granted", for inspection.
	WrongGrants int      `json:"wrong_grants"`
	WrongPairs  []string `json:"wrong_pairs,omitempty"`
	// Ambiguous: mated visits ended ambiguous.
	Ambiguous int `json:"ambiguous"`
	// MeanFrames: frames seen before a correct grant, on average.
	MeanFrames float64 `json:"mean_frames_to_grant"`
	// FNIRMulti: FNIR of the mated visits with two or more frames (people
	// with three or more photos); FNIR counts single-photo visits too.
	FNIRMulti float64 `json:"fnir_multi_frame"`
}

// SweptPoint is FNIR at a target FPIR, threshold chosen on the test
// visits themselves.
type SweptPoint struct {
	Target    float64 `json:"target_fpir"`
	Threshold float64 `json:"threshold"`
	FPIR      float64 `json:"fpir"`
	FNIR      float64 `json:"fnir"`
}

// DETPoint is one threshold of the identification DET curve.
type DETPoint struct {
	Threshold float64 `json:"threshold"`
	FPIR      float64 `json:"fpir"`
	FNIR      float64 `json:"fnir"`
}

// visit is one recorded visit: its looks and the truth.
type visit struct {
	looks []decision.Look
	mated bool
	truth string
	fold  int
}

// openCtx holds what the 1:N evaluation shares: one enrolment photo
// (template) per identity and each tower's raw score of every image
// against every template.
type openCtx struct {
	d        *fusionData
	fit      *fusionFit
	tmpl     []int
	raw      [][]float32 // [tower][img*ids+id]
	nIDs     int
	frames   int
	tailExc  float64
	marginQ  float64
	logCfg   func(string, ...any)
	calTrgtN int
	agg      decision.Aggregate
}

// visitAggregate is how the daemon combines a visit's looks; the visit
// model is fitted, and the rule evaluated, with it (docs/decision.md).
var visitAggregate = decision.Max

func (o *openCtx) logit(key, img, id int) float64 {
	return o.fit.logit(key, func(t int) float64 { return float64(o.raw[t][img*o.nIDs+id]) })
}

// run feeds a visit's frames against the gallery ids to the decision
// package's Evidence and returns the look after each frame.
func (o *openCtx) run(key int, frames []int, gallery []int) ([]decision.Look, error) {
	e := decision.Evidence{Agg: o.agg}
	looks := make([]decision.Look, 0, len(frames))
	cands := make([]decision.Candidate, len(gallery))
	for _, img := range frames {
		for i, id := range gallery {
			cands[i] = decision.Candidate{ID: o.d.names[id], Logit: o.logit(key, img, id)}
		}
		if err := e.Add(decision.Frame{Quality: 1, Candidates: cands}); err != nil {
			return nil, err
		}
		looks = append(looks, e.Look())
	}
	return looks, nil
}

func pick(rng *rand.Rand, imgs []int, exclude, n int) []int {
	var s []int
	for _, i := range imgs {
		if i != exclude {
			s = append(s, i)
		}
	}
	rng.Shuffle(len(s), func(a, b int) { s[a], s[b] = s[b], s[a] })
	return s[:min(n, len(s))]
}

// calibrate fits the visit model and margin of one subset on the given
// identities: non-mated visits (3 per person with two or more photos, all
// their photos eligible) against every other identity's template give the
// peak evidence samples; mated visits against every template give the
// margin.
func (o *openCtx) calibrate(key int, ids []int, rng *rand.Rand) (decision.VisitModel, int, error) {
	var peaks []float64
	all := make([]int, o.nIDs)
	for i := range all {
		all[i] = i
	}
	for _, p := range ids {
		imgs := o.d.byID[p]
		if len(imgs) < 2 {
			continue
		}
		others := make([]int, 0, o.nIDs-1)
		for _, id := range all {
			if id != p {
				others = append(others, id)
			}
		}
		for range 3 {
			frames := pick(rng, imgs, -1, o.frames)
			e := decision.Evidence{Agg: o.agg}
			peak := make([]float64, len(others))
			for i := range peak {
				peak[i] = math.Inf(-1)
			}
			cands := make([]decision.Candidate, len(others))
			for _, img := range frames {
				for i, id := range others {
					cands[i] = decision.Candidate{ID: o.d.names[id], Logit: o.logit(key, img, id)}
				}
				if err := e.Add(decision.Frame{Quality: 1, Candidates: cands}); err != nil {
					return decision.VisitModel{}, 0, err
				}
				for i, id := range others {
					s, _ := e.Score(o.d.names[id])
					peak[i] = math.Max(peak[i], s)
				}
			}
			peaks = append(peaks, peak...)
		}
	}
	v, err := decision.FitVisitModel(peaks, o.frames, o.tailExc, 0)
	if err != nil {
		return v, 0, err
	}
	v.Aggregate = o.agg
	// Margin: the margins of correct grants at the threshold for N = 1,000
	// and FPIR 1e-3; the margin may cost MarginCost of them.
	th := v.Quantile(decision.PerIdentity(o.calTrgtN, 1e-3))
	rule := decision.Rule{Threshold: th, MaxFrames: o.frames, Aggregate: o.agg}
	var margins []float64
	wrong := 0
	for _, p := range ids {
		imgs := o.d.byID[p]
		if len(imgs) < 2 {
			continue
		}
		looks, err := o.run(key, pick(rng, imgs, o.tmpl[p], o.frames), all)
		if err != nil {
			return v, 0, err
		}
		dd := rule.First(looks)
		switch {
		case dd.Outcome != decision.Granted:
		case dd.Best.ID == o.d.names[p]:
			margins = append(margins, dd.Margin())
		default:
			wrong++
		}
	}
	if len(margins) == 0 {
		return v, wrong, errors.New("fusion: no correct grant to calibrate the margin on")
	}
	sort.Float64s(margins)
	v.Margin = math.Max(0, margins[int(o.marginQ*float64(len(margins)))])
	if v.Galleries, err = o.galleryCurves(key, ids, v.Margin, rng); err != nil {
		return v, wrong, err
	}
	return v, wrong, v.Validate()
}

func half(name string) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32() % 2)
}

// openSet runs the 1:N evaluation with two folds of identities (each half
// calibrates, the other is tested) and fits the final calibration on all
// identities.
func (c FusionConfig) openSet(ctx context.Context, d *fusionData, fit *fusionFit) ([]OpenSetResult, *decision.Calibration, error) {
	rng := rand.New(rand.NewPCG(c.Seed, 2))
	o := &openCtx{d: d, fit: fit, nIDs: len(d.names), frames: c.MaxFrames, tailExc: c.TailExceed, marginQ: c.MarginCost, calTrgtN: slices.Max(c.Sizes), agg: c.Aggregate, logCfg: c.Log}
	o.tmpl = make([]int, o.nIDs)
	for id, imgs := range d.byID {
		o.tmpl[id] = imgs[rng.IntN(len(imgs))]
	}
	o.raw = make([][]float32, len(d.towers))
	for t := range d.towers {
		r := make([]float32, len(d.imgs)*o.nIDs)
		for img := range d.imgs {
			for id := range o.nIDs {
				r[img*o.nIDs+id] = float32(d.raw(t, img, o.tmpl[id]))
			}
		}
		o.raw[t] = r
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
	}
	c.Log("fusion: 1:N: %d identities, score matrix done", o.nIDs)
	halves := [2][]int{}
	for id, n := range d.names {
		halves[half(n)] = append(halves[half(n)], id)
	}
	var results []OpenSetResult
	cal := &decision.Calibration{Version: decision.Version, Towers: fit.towers, Heads: fit.heads, Visits: map[string]decision.VisitModel{}}
	for key := range fit.keys {
		// Calibrate on each half.
		var models [2]decision.VisitModel
		for f := range 2 {
			v, wrong, err := o.calibrate(key, halves[1-f], rng)
			if err != nil {
				return nil, nil, fmt.Errorf("fusion: calibrate %s on half %d: %w", fit.keys[key], 2-f, err)
			}
			models[f] = v
			c.Log("fusion: %s fold %d: visit model from %d samples, tail scale %.3f, margin %.3f (%d wrong grants at calibration)", fit.keys[key], f+1, v.Samples, v.TailScale, v.Margin, wrong)
		}
		for _, n := range c.Sizes {
			var visits []visit
			for f := range 2 {
				test, other := halves[f], halves[1-f]
				var multi []int
				for _, id := range test {
					if len(d.byID[id]) >= 2 {
						multi = append(multi, id)
					}
				}
				for range c.Trials {
					rng.Shuffle(len(multi), func(a, b int) { multi[a], multi[b] = multi[b], multi[a] })
					mated := multi[:min(len(multi)/2, n/2)]
					if n-len(mated) > len(other) {
						return nil, nil, fmt.Errorf("fusion: a gallery of %d needs %d identities from the other half, which has %d", n, n-len(mated), len(other))
					}
					fill := append([]int(nil), other...)
					rng.Shuffle(len(fill), func(a, b int) { fill[a], fill[b] = fill[b], fill[a] })
					gallery := append(append([]int(nil), mated...), fill[:n-len(mated)]...)
					in := map[int]bool{}
					for _, id := range mated {
						in[id] = true
					}
					for _, id := range test {
						var frames []int
						if in[id] {
							frames = pick(rng, d.byID[id], o.tmpl[id], c.MaxFrames)
						} else {
							frames = pick(rng, d.byID[id], -1, c.MaxFrames)
						}
						looks, err := o.run(key, frames, gallery)
						if err != nil {
							return nil, nil, err
						}
						visits = append(visits, visit{looks: looks, mated: in[id], truth: d.names[id], fold: f})
					}
					if err := ctx.Err(); err != nil {
						return nil, nil, err
					}
				}
			}
			results = append(results, summarizeOpenSet(fit.keys[key], n, 2*c.Trials, visits, models, c.Targets))
			c.Log("fusion: %s N=%d: %d visits", fit.keys[key], n, len(visits))
		}
		// The shipped calibration: every identity.
		v, _, err := o.calibrate(key, append(append([]int(nil), halves[0]...), halves[1]...), rng)
		if err != nil {
			return nil, nil, fmt.Errorf("fusion: calibrate %s: %w", fit.keys[key], err)
		}
		cal.Visits[fit.keys[key]] = v
	}
	return results, cal, nil
}

// outcome is what a rule did with a visit: granted to the right identity,
// a false grant (non-mated granted, or mated granted to someone else).
func outcome(r decision.Rule, v visit) (right, falseGrant bool, d decision.Decision) {
	d = r.First(v.looks)
	if d.Outcome != decision.Granted {
		return false, false, d
	}
	if v.mated && d.Best.ID == v.truth {
		return true, false, d
	}
	return false, true, d
}

func summarizeOpenSet(key string, n, trials int, visits []visit, models [2]decision.VisitModel, targets []float64) OpenSetResult {
	res := OpenSetResult{Towers: key, N: n, Trials: trials}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range visits {
		if v.mated {
			res.Mated++
			if len(v.looks) > 1 {
				res.MatedMulti++
			}
		} else {
			res.NonMated++
			if len(v.looks) > 1 {
				res.NonMatedMulti++
			}
		}
		for _, l := range v.looks {
			if l.HasBest {
				lo, hi = math.Min(lo, l.Best.Logit), math.Max(hi, l.Best.Logit)
			}
		}
	}
	rates := func(rules [2]decision.Rule) (fpir, fnir float64, p CalibratedPoint) {
		frames, right, rightMulti := 0, 0, 0
		for _, v := range visits {
			ok, bad, d := outcome(rules[v.fold], v)
			if ok && len(v.looks) > 1 {
				rightMulti++
			}
			switch {
			case !v.mated && bad:
				p.FalseGrants++
				if len(v.looks) > 1 {
					p.FalseGrantsMulti++
				}
				if !slices.Contains(p.FalseVisitors, v.truth) {
					p.FalseVisitors = append(p.FalseVisitors, v.truth)
				}
			case v.mated && ok:
				right++
				frames += d.Frames
			case v.mated && bad:
				p.WrongGrants++
				p.WrongPairs = append(p.WrongPairs, v.truth+" -> "+d.Best.ID)
			case v.mated && d.Outcome == decision.Ambiguous:
				p.Ambiguous++
			}
		}
		p.FPIR = float64(p.FalseGrants) / float64(max(res.NonMated, 1))
		p.FPIRMulti = float64(p.FalseGrantsMulti) / float64(max(res.NonMatedMulti, 1))
		p.FNIR = 1 - float64(right)/float64(max(res.Mated, 1))
		p.MeanFrames = float64(frames) / float64(max(right, 1))
		p.FNIRMulti = 1 - float64(rightMulti)/float64(max(res.MatedMulti, 1))
		return p.FPIR, p.FNIR, p
	}
	for _, t := range targets {
		var rules [2]decision.Rule
		var th []float64
		for f, m := range models {
			rules[f] = decision.Rule{Threshold: m.Threshold(n, t), Margin: m.Margin, MaxFrames: m.MaxFrames, Aggregate: m.Aggregate}
			th = append(th, rules[f].Threshold)
		}
		_, _, p := rates(rules)
		p.Target, p.Thresholds = t, th
		res.Calibrated = append(res.Calibrated, p)
	}
	// The DET: thresholds swept, each fold's calibrated margin kept.
	// A uniform grid, and just above each of the 300 highest best logits
	// of non-mated visits, where low FPIR is decided.
	const steps = 400
	var grid, tops []float64
	for i := 0; i <= steps; i++ {
		grid = append(grid, lo+(hi-lo)*float64(i)/steps)
	}
	for _, v := range visits {
		if !v.mated {
			top := math.Inf(-1)
			for _, l := range v.looks {
				if l.HasBest {
					top = math.Max(top, l.Best.Logit)
				}
			}
			tops = append(tops, top)
		}
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(tops)))
	for _, t := range tops[:min(300, len(tops))] {
		grid = append(grid, math.Nextafter(t, math.Inf(1)))
	}
	sort.Float64s(grid)
	for _, th := range grid {
		var rules [2]decision.Rule
		for f, m := range models {
			rules[f] = decision.Rule{Threshold: th, Margin: m.Margin, MaxFrames: m.MaxFrames, Aggregate: m.Aggregate}
		}
		fpir, fnir, _ := rates(rules) // pairs dropped: only the calibrated points keep them
		res.DET = append(res.DET, DETPoint{Threshold: th, FPIR: fpir, FNIR: fnir})
	}
	for _, t := range targets {
		for _, p := range res.DET { // FPIR falls as the threshold rises
			if p.FPIR <= t {
				res.Swept = append(res.Swept, SweptPoint{Target: t, Threshold: p.Threshold, FPIR: p.FPIR, FNIR: p.FNIR})
				break
			}
		}
	}
	return res
}

// curveSizes are the gallery sizes whose per-visit FPIR the calibration
// simulates (decision.GalleryCurve); sizes in between are interpolated in
// log N, others use the independence model.
var curveSizes = []int{10, 30, 100, 300, 1000, 2000}

// curveGalleries is the number of random galleries per calibration visit
// and size.
const curveGalleries = 200

// curveTop is how many of a visit's highest-peak identities the simulation
// tracks: an identity below them cannot be granted at the thresholds the
// curves reach.
const curveTop = 200

// galleryCurves simulates the rule (margin included) on random galleries
// of each of curveSizes: every person of ids with two or more photos
// visits 3 times with up to o.frames of them, against a random gallery
// drawn from every other identity. A stranger at a door gives several
// looks, so the curves describe visits of several looks only: people
// with a single photo (one look, fewer chances) would make the promise
// hold for the evaluation's mix of visits rather than for the door's. The gallery is drawn by
// keeping each other identity with probability N/(identities-1).
func (o *openCtx) galleryCurves(key int, ids []int, margin float64, rng *rand.Rand) ([]decision.GalleryCurve, error) {
	others := o.nIDs - 1
	var sizes []int
	for _, n := range curveSizes {
		if n < others {
			sizes = append(sizes, n)
		}
	}
	levels := make([][][]float64, len(sizes)) // [size][visit][gallery]
	var who []int
	for _, p := range ids {
		imgs := o.d.byID[p]
		if len(imgs) < 2 {
			continue
		}
		for range 3 {
			who = append(who, p)
			ev, err := o.visitEvidence(key, pick(rng, imgs, -1, o.frames), p)
			if err != nil {
				return nil, err
			}
			// The visit's curveTop identities by peak, and per look their
			// order by that look's evidence.
			peak := make([]float64, o.nIDs)
			for id := range peak {
				peak[id] = math.Inf(-1)
				for _, l := range ev {
					peak[id] = math.Max(peak[id], l[id])
				}
			}
			top := make([]int, o.nIDs)
			for i := range top {
				top[i] = i
			}
			sort.Slice(top, func(a, b int) bool { return peak[top[a]] > peak[top[b]] })
			top = top[:min(curveTop, len(top))]
			order := make([][]int, len(ev)) // per look: indices into top, by evidence
			for l := range ev {
				order[l] = make([]int, len(top))
				for i := range top {
					order[l][i] = i
				}
				sort.Slice(order[l], func(a, b int) bool { return ev[l][top[order[l][a]]] > ev[l][top[order[l][b]]] })
			}
			in := make([]bool, len(top))
			for s, n := range sizes {
				prob := float64(n) / float64(others)
				ls := make([]float64, curveGalleries)
				for g := range ls {
					for i := range in {
						in[i] = rng.Float64() < prob
					}
					ls[g] = math.Inf(-1)
					for l, ord := range order {
						t1, t2, found := math.Inf(-1), math.Inf(-1), 0
						for _, i := range ord {
							if in[i] {
								if found == 0 {
									t1 = ev[l][top[i]]
								} else {
									t2 = ev[l][top[i]]
								}
								if found++; found == 2 {
									break
								}
							}
						}
						// A second best outside the tracked identities is
						// counted as none: the margin is then met (the safe side).
						if found > 0 && t1-t2 >= margin {
							ls[g] = math.Max(ls[g], t1)
						}
					}
				}
				levels[s] = append(levels[s], ls)
			}
		}
	}
	var curves []decision.GalleryCurve
	for s, n := range sizes {
		c, err := decision.FitGalleryCurve(n, levels[s], who)
		if errors.Is(err, decision.ErrFewStrangers) {
			o.logCfg("fusion: no gallery curve for N=%d: %v", n, err)
			continue
		}
		if err != nil {
			return nil, err
		}
		curves = append(curves, c)
	}
	return curves, nil
}

// visitEvidence runs a visit's frames through the decision package's
// Evidence against every identity but p and returns each look's
// aggregated logit per identity (p's is -Inf).
func (o *openCtx) visitEvidence(key int, frames []int, p int) ([][]float64, error) {
	e := decision.Evidence{Agg: o.agg}
	cands := make([]decision.Candidate, 0, o.nIDs-1)
	var out [][]float64
	for _, img := range frames {
		cands = cands[:0]
		for id := range o.nIDs {
			if id != p {
				cands = append(cands, decision.Candidate{ID: o.d.names[id], Logit: o.logit(key, img, id)})
			}
		}
		if err := e.Add(decision.Frame{Quality: 1, Candidates: cands}); err != nil {
			return nil, err
		}
		l := make([]float64, o.nIDs)
		for id := range o.nIDs {
			l[id] = math.Inf(-1)
			if id != p {
				l[id], _ = e.Score(o.d.names[id])
			}
		}
		out = append(out, l)
	}
	return out, nil
}
