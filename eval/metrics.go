package eval

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
)

// FoldResult is one fold of cross-validated verification accuracy.
type FoldResult struct {
	Fold      int `json:"fold"` // 1-based
	Pairs     int `json:"pairs"`
	Same      int `json:"same"`
	Different int `json:"different"`
	FTA       int `json:"fta_pairs"` // pairs in this fold that failed to acquire
	// Threshold was chosen on the other folds, in the original score units.
	Threshold     float64 `json:"threshold"`
	TrainAccuracy float64 `json:"train_accuracy"`
	Accuracy      float64 `json:"accuracy"` // on this fold, at Threshold
}

// Accuracy is k-fold cross-validated verification accuracy.
type Accuracy struct {
	Folds []FoldResult `json:"folds"`
	Mean  float64      `json:"mean"`
	// Std is the sample standard deviation (n-1) of the fold accuracies,
	// StdPop the population one (n), StdErr the standard error of the mean
	// (Std / sqrt(k)), which is what LFW results quote as "±".
	Std    float64 `json:"std"`
	StdPop float64 `json:"std_pop"`
	StdErr float64 `json:"std_err"`
}

// CrossValidate computes verification accuracy per fold, each fold decided
// at the threshold that maximises accuracy on all the other folds (the LFW
// View-2 protocol: the test fold never influences its own threshold).
//
// Decisions: a pair is a match when it was acquired and its score is on
// the match side of the threshold; a pair that failed to acquire is a "no
// match" decision, so it counts as an error when it is a same pair and as
// correct when it is a different pair, and it stays in the denominator.
//
// Threshold choice: accuracy is piecewise constant in the threshold,
// changing only at the observed scores. Among the intervals between
// consecutive distinct training scores, the maximal runs ("plateaus") that
// reach the best training accuracy are found; the lowest plateau (in
// similarity) is used and the threshold is the midpoint of its two
// bounding scores. A plateau unbounded below uses its upper bound (the
// lowest score still accepted); one unbounded above uses the next float
// above the highest training score.
func CrossValidate(s Scores, plan FoldPlan) (Accuracy, error) {
	if err := s.Validate(); err != nil {
		return Accuracy{}, err
	}
	k := len(plan.Folds)
	if k < 2 {
		return Accuracy{}, fmt.Errorf("%w: %d folds, need at least 2", ErrFolds, k)
	}
	fold := make([]int, len(s.Results))
	for i := range fold {
		fold[i] = -1
	}
	for f, idx := range plan.Folds {
		if len(idx) == 0 {
			return Accuracy{}, fmt.Errorf("%w: fold %d is empty", ErrFolds, f+1)
		}
		for _, j := range idx {
			if j < 0 || j >= len(s.Results) || fold[j] != -1 {
				return Accuracy{}, fmt.Errorf("%w: pair index %d out of range or in two folds", ErrFolds, j)
			}
			fold[j] = f
		}
	}
	for j, f := range fold {
		if f == -1 {
			return Accuracy{}, fmt.Errorf("%w: pair %d is in no fold", ErrFolds, j)
		}
	}
	acc := Accuracy{Folds: make([]FoldResult, k)}
	for f := range k {
		var train []Result
		for j, r := range s.Results {
			if fold[j] != f {
				train = append(train, r)
			}
		}
		t, trainAcc, err := bestThreshold(s, train)
		if err != nil {
			return Accuracy{}, fmt.Errorf("fold %d: %w", f+1, err)
		}
		fr := FoldResult{Fold: f + 1, Threshold: s.score(t), TrainAccuracy: trainAcc}
		correct := 0
		for _, j := range plan.Folds[f] {
			r := s.Results[j]
			fr.Pairs++
			if r.Same {
				fr.Same++
			} else {
				fr.Different++
			}
			if !r.Acquired {
				fr.FTA++
			}
			if (s.sim(r) >= t) == r.Same {
				correct++
			}
		}
		fr.Accuracy = float64(correct) / float64(fr.Pairs)
		acc.Folds[f] = fr
	}
	var sum float64
	for _, fr := range acc.Folds {
		sum += fr.Accuracy
	}
	acc.Mean = sum / float64(k)
	var ss float64
	for _, fr := range acc.Folds {
		d := fr.Accuracy - acc.Mean
		ss += d * d
	}
	acc.Std = math.Sqrt(ss / float64(k-1))
	acc.StdPop = math.Sqrt(ss / float64(k))
	acc.StdErr = acc.Std / math.Sqrt(float64(k))
	return acc, nil
}

// bestThreshold returns the similarity threshold maximising accuracy on
// train (see CrossValidate for the rule) and that accuracy.
func bestThreshold(s Scores, train []Result) (float64, float64, error) {
	type item struct {
		sim  float64
		same bool
	}
	var items []item
	ftaDiff := 0
	for _, r := range train {
		if !r.Acquired {
			if !r.Same {
				ftaDiff++
			}
			continue
		}
		items = append(items, item{s.sim(r), r.Same})
	}
	if len(items) == 0 {
		return 0, 0, fmt.Errorf("%w: no acquired pairs in the training folds", ErrNoScores)
	}
	sort.Slice(items, func(i, j int) bool { return items[i].sim < items[j].sim })
	// Distinct values u[0..m-1] with, for each, the same/diff counts below it.
	var u []float64
	var sameBelow, diffBelow []int
	totalSame, totalDiff := 0, 0
	for i, it := range items {
		if i == 0 || it.sim != items[i-1].sim {
			u = append(u, it.sim)
			sameBelow = append(sameBelow, totalSame)
			diffBelow = append(diffBelow, totalDiff)
		}
		if it.same {
			totalSame++
		} else {
			totalDiff++
		}
	}
	m := len(u)
	// Candidate j < m accepts sim >= u[j]; candidate m rejects all.
	correct := make([]int, m+1)
	for j := range m {
		correct[j] = (totalSame - sameBelow[j]) + diffBelow[j] + ftaDiff
	}
	correct[m] = totalDiff + ftaDiff
	best := 0
	for j := range correct {
		if correct[j] > correct[best] {
			best = j
		}
	}
	a, b := best, best // first plateau reaching the maximum
	for b+1 <= m && correct[b+1] == correct[best] {
		b++
	}
	// Candidate j covers thresholds (u[j-1], u[j]]; candidate m covers (u[m-1], +Inf).
	var t float64
	switch {
	case a == 0 && b == m:
		t = u[0]
	case a == 0:
		t = u[b]
	case b == m:
		t = math.Nextafter(u[m-1], math.Inf(1))
	default:
		t = u[a-1] + (u[b]-u[a-1])/2
	}
	return t, float64(correct[best]) / float64(len(train)), nil
}

// ROCPoint is one point of an ROC curve: accepting every pair whose score
// is on the match side of Threshold gives false-accept rate FAR and
// true-accept rate TAR. The first point (0,0) has an infinite threshold
// (accept nothing) and, when some pairs failed to acquire, the last point
// (1,1) has an infinite one too (accept even those); in JSON an infinite
// threshold is null.
type ROCPoint struct {
	Threshold float64
	FAR, TAR  float64
}

// MarshalJSON writes {"threshold","far","tar"}, threshold null when infinite.
func (p ROCPoint) MarshalJSON() ([]byte, error) {
	var t *float64
	if !math.IsInf(p.Threshold, 0) && !math.IsNaN(p.Threshold) {
		t = &p.Threshold
	}
	return json.Marshal(struct {
		Threshold *float64 `json:"threshold"`
		FAR       float64  `json:"far"`
		TAR       float64  `json:"tar"`
	}{t, p.FAR, p.TAR})
}

// UnmarshalJSON reads what MarshalJSON writes (a null threshold becomes +Inf
// at FAR 0 and -Inf otherwise, in similarity terms; the sign is only
// meaningful for plotting).
func (p *ROCPoint) UnmarshalJSON(b []byte) error {
	var v struct {
		Threshold *float64 `json:"threshold"`
		FAR       float64  `json:"far"`
		TAR       float64  `json:"tar"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	p.FAR, p.TAR = v.FAR, v.TAR
	switch {
	case v.Threshold != nil:
		p.Threshold = *v.Threshold
	case v.FAR == 0:
		p.Threshold = math.Inf(1)
	default:
		p.Threshold = math.Inf(-1)
	}
	return nil
}

// ROC returns the exact ROC curve over all pairs: one point per distinct
// score, from (0,0) to (1,1), FAR and TAR non-decreasing. Pairs that failed
// to acquire have the worst score, so they are only accepted at the last
// point. Thresholds are in the original score units.
func ROC(s Scores) ([]ROCPoint, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	type item struct {
		sim  float64
		same bool
	}
	items := make([]item, len(s.Results))
	nSame, nDiff := 0, 0
	for i, r := range s.Results {
		items[i] = item{s.sim(r), r.Same}
		if r.Same {
			nSame++
		} else {
			nDiff++
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].sim > items[j].sim })
	pts := []ROCPoint{{Threshold: s.score(math.Inf(1)), FAR: 0, TAR: 0}}
	tp, fp := 0, 0
	for i := 0; i < len(items); {
		v := items[i].sim
		for ; i < len(items) && items[i].sim == v; i++ {
			if items[i].same {
				tp++
			} else {
				fp++
			}
		}
		pts = append(pts, ROCPoint{Threshold: s.score(v), FAR: float64(fp) / float64(nDiff), TAR: float64(tp) / float64(nSame)})
	}
	return pts, nil
}

// AUC is the exact area under an ROC curve from ROC, by the trapezoid
// rule; with ties between genuine and impostor scores this equals the
// Mann-Whitney probability that a genuine pair outscores an impostor pair,
// ties counting one half.
func AUC(roc []ROCPoint) float64 {
	var a float64
	for i := 1; i < len(roc); i++ {
		a += (roc[i].FAR - roc[i-1].FAR) * (roc[i].TAR + roc[i-1].TAR) / 2
	}
	return a
}

// EER is the equal error rate of an ROC curve from ROC: the rate where the
// false-accept rate equals the false-reject rate (1 - TAR), linearly
// interpolated between the two points where FRR - FAR changes sign.
func EER(roc []ROCPoint) float64 {
	prev := 1.0 // FRR - FAR at (0,0)
	for i := 1; i < len(roc); i++ {
		d := (1 - roc[i].TAR) - roc[i].FAR
		if d <= 0 {
			alpha := prev / (prev - d)
			return roc[i-1].FAR + alpha*(roc[i].FAR-roc[i-1].FAR)
		}
		prev = d
	}
	return math.NaN() // unreachable for curves ending at (1,1)
}

// Levels of an operating point, after ISO/IEC 19795-1.
const (
	// LevelSystem counts every pair; failures to acquire are rejections
	// (FAR, TAR, FRR).
	LevelSystem = "system"
	// LevelAlgorithm counts only comparisons that happened, i.e. acquired
	// pairs (FMR, FNMR). Calibration uses this level: the daemon only
	// compares faces it found.
	LevelAlgorithm = "algorithm"
)

// ErrNotEnoughData is wrapped when a target false-match rate is below what
// the number of impostor pairs can measure.
var ErrNotEnoughData = errors.New("not enough data")

// OperatingPoint is the decision threshold for a target false-match (or
// false-accept) rate and the rates it gives. When Enough is false the data
// has fewer impostor pairs than Need, and Threshold, Achieved, TAR and
// FNMR are nil: the rate cannot be measured, so no number is given.
type OperatingPoint struct {
	Target    float64 `json:"target"` // FAR (system level) or FMR (algorithm level) asked for
	Level     string  `json:"level"`
	Impostors int     `json:"impostors"` // impostor pairs at this level
	Genuine   int     `json:"genuine"`   // genuine pairs at this level
	Need      int     `json:"need"`      // impostor pairs needed: ceil(1/Target)
	Enough    bool    `json:"enough"`
	// Threshold, in the original score units, is the smallest (in
	// similarity) that keeps the impostor acceptance rate <= Target: the
	// next float beyond the (floor(Target*Impostors)+1)-th best impostor
	// score, so ">=" and ">" give the same decisions on this data.
	Threshold    *float64 `json:"threshold,omitempty"`
	FalseMatches int      `json:"false_matches"`
	Achieved     *float64 `json:"achieved,omitempty"` // FalseMatches / Impostors
	TAR          *float64 `json:"tar,omitempty"`
	FNMR         *float64 `json:"fnmr,omitempty"` // 1 - TAR
	Note         string   `json:"note,omitempty"`
}

// Err returns an error wrapping ErrNotEnoughData when the point could not be
// measured, else nil.
func (o OperatingPoint) Err() error {
	if o.Enough {
		return nil
	}
	return fmt.Errorf("%w: target %g needs %d impostor pairs at %s level, have %d", ErrNotEnoughData, o.Target, o.Need, o.Level, o.Impostors)
}

// needFor returns how many impostor pairs a target rate needs to be
// measurable at all: one false match must be allowed.
func needFor(target float64) int {
	return int(math.Ceil(1/target - 1e-9))
}

// AtFAR returns the system-level operating point (every pair counted,
// failures to acquire rejected) for a target false-accept rate: TAR at FAR.
func AtFAR(s Scores, far float64) (OperatingPoint, error) {
	return operatingPoint(s, far, LevelSystem)
}

// AtFMR returns the algorithm-level operating point (acquired pairs only)
// for a target false-match rate: FNMR at FMR.
func AtFMR(s Scores, fmr float64) (OperatingPoint, error) {
	return operatingPoint(s, fmr, LevelAlgorithm)
}

func operatingPoint(s Scores, target float64, level string) (OperatingPoint, error) {
	if !(target > 0 && target < 1) {
		return OperatingPoint{}, fmt.Errorf("target rate %g is not in (0,1)", target)
	}
	if err := s.Validate(); err != nil {
		return OperatingPoint{}, err
	}
	var imp, gen []float64
	for _, r := range s.Results {
		if level == LevelAlgorithm && !r.Acquired {
			continue
		}
		if r.Same {
			gen = append(gen, s.sim(r))
		} else {
			imp = append(imp, s.sim(r))
		}
	}
	o := OperatingPoint{Target: target, Level: level, Impostors: len(imp), Genuine: len(gen), Need: needFor(target)}
	if len(imp) < o.Need || len(gen) == 0 {
		o.Note = fmt.Sprintf("not enough data: %d impostor and %d genuine pairs, need %d impostor pairs for %g", len(imp), len(gen), o.Need, target)
		return o, nil
	}
	o.Enough = true
	sort.Sort(sort.Reverse(sort.Float64Slice(imp)))
	allowed := int(math.Floor(target*float64(len(imp)) + 1e-9))
	t := math.Nextafter(imp[allowed], math.Inf(1))
	for _, v := range imp {
		if v >= t {
			o.FalseMatches++
		}
	}
	acc := 0
	for _, v := range gen {
		if v >= t {
			acc++
		}
	}
	th := s.score(t)
	achieved := float64(o.FalseMatches) / float64(len(imp))
	tar := float64(acc) / float64(len(gen))
	fnmr := 1 - tar
	o.Threshold, o.Achieved, o.TAR, o.FNMR = &th, &achieved, &tar, &fnmr
	return o, nil
}
