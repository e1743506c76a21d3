package eval

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Sample is one image in an identification experiment.
type Sample struct {
	Identity string
	// Name orders an identity's images (e.g. the file path); enrolment
	// takes the first acquired ones in this order.
	Name string
	// Acquired is false when no face was found in the image.
	Acquired bool
}

// Scorer scores probe sample p against the template enrolled from the
// samples enrolled (indexes into the samples slice given to Identify), in
// the units of IdentifyOptions.HigherIsMatch.
type Scorer func(probe int, enrolled []int) float64

// BestOf is a Scorer that compares the probe with each enrolled sample
// using sim and keeps the best score (max when higherIsMatch, else min).
func BestOf(sim func(i, j int) float64, higherIsMatch bool) Scorer {
	return func(p int, enrolled []int) float64 {
		best := math.NaN()
		for _, e := range enrolled {
			v := sim(p, e)
			if math.IsNaN(best) || (higherIsMatch && v > best) || (!higherIsMatch && v < best) {
				best = v
			}
		}
		return best
	}
}

// TemplateScorer is a Scorer over embeddings (indexed like the samples):
// the template is the mean of the enrolled embeddings, scaled back to unit
// length, compared with the probe by kind (KindEuclidean or KindCosine),
// which is how a gallery enrolled from several photos decides. Templates
// are computed once per enrolled set and cached; the Scorer is not safe for
// concurrent use. A probe or enrolled image without an embedding (nil) or
// with a different size scores NaN, which Identify reports as an error.
func TemplateScorer(emb [][]float32, kind string) (Scorer, error) {
	if kind != KindEuclidean && kind != KindCosine {
		return nil, fmt.Errorf("template scorer: kind %q: want %s or %s", kind, KindEuclidean, KindCosine)
	}
	cache := map[string][]float32{}
	template := func(enrolled []int) []float32 {
		var key strings.Builder
		for _, e := range enrolled {
			key.WriteString(strconv.Itoa(e))
			key.WriteByte(',')
		}
		if t, ok := cache[key.String()]; ok {
			return t
		}
		var t []float32
		for _, e := range enrolled {
			if emb[e] == nil || (t != nil && len(emb[e]) != len(t)) {
				t = nil
				break
			}
			if t == nil {
				t = make([]float32, len(emb[e]))
			}
			for i, v := range emb[e] {
				t[i] += v
			}
		}
		if t != nil {
			var n float64
			for _, v := range t {
				n += float64(v) * float64(v)
			}
			n = math.Sqrt(n)
			for i := range t {
				t[i] = float32(float64(t[i]) / n)
			}
		}
		cache[key.String()] = t
		return t
	}
	return func(p int, enrolled []int) float64 {
		t := template(enrolled)
		if t == nil || len(emb[p]) != len(t) {
			return math.NaN()
		}
		if kind == KindCosine {
			return cosine(emb[p], t)
		}
		return euclidean(emb[p], t)
	}, nil
}

// IdentifyOptions configures Identify.
type IdentifyOptions struct {
	// Ks are the enrolment sizes to run; nil means 1, 3 and 5.
	Ks []int
	// HigherIsMatch is the direction of the Scorer's scores.
	HigherIsMatch bool
	// Threshold (original score units, e.g. a calibrated manifest
	// threshold) enables open-set figures (FPIR, FNIR); nil skips them.
	Threshold *float64
	// UnknownEvery holds out every n-th identity (1-based, in sorted
	// order: the n-th, 2n-th, ...) as unknown: never enrolled, all its
	// images probe the gallery. 0 means 5; negative means no unknowns.
	UnknownEvery int
}

// IdentificationResult is one enrolment size's identification figures.
type IdentificationResult struct {
	K          int `json:"k"`
	Identities int `json:"identities"` // enrolled
	// Skipped counts known identities with fewer than K+1 images (or
	// fewer than K acquired ones): neither enrolled nor probed at this K.
	Skipped      int     `json:"skipped_identities"`
	Probes       int     `json:"probes"`     // mated probes (their identity is enrolled)
	ProbeFTA     int     `json:"probe_fta"`  // mated probes with no face found: counted as misses
	Rank1Correct int     `json:"rank1_hits"` // mated probes whose own identity scored strictly best
	Rank1        float64 `json:"rank1"`      // closed-set rank-1 accuracy, Rank1Correct / Probes

	UnknownIdentities int `json:"unknown_identities"`
	UnknownProbes     int `json:"unknown_probes"`

	Threshold      *float64 `json:"threshold,omitempty"`
	FalsePositives int      `json:"false_positives"` // unknown probes whose best score passes Threshold
	FPIR           *float64 `json:"fpir,omitempty"`  // FalsePositives / UnknownProbes
	FalseNegatives int      `json:"false_negatives"` // mated probes not returned at rank 1 above Threshold
	FNIR           *float64 `json:"fnir,omitempty"`  // FalseNegatives / Probes
	Note           string   `json:"note,omitempty"`
}

// ErrIdentify is wrapped by Identify's input errors.
var ErrIdentify = errors.New("identification")

// Identify runs the one-shot identification protocol for each K.
//
// Identities are sorted by name; every UnknownEvery-th is held out as
// unknown. For each K, a known identity with at least K acquired images
// and at least one more image is enrolled from its first K acquired images
// in Name order; its other images are mated probes. Closed-set rank-1: a
// mated probe is a hit when its own identity scores strictly better than
// every other enrolled identity (ties count against it; a probe with no
// face is a miss). With a Threshold, open-set figures follow: FNIR is the
// share of mated probes that are not a rank-1 hit with a score on the
// match side of the threshold; FPIR is the share of unknown probes whose
// best score over the gallery is on the match side (an unknown probe with
// no face is correctly rejected).
func Identify(samples []Sample, score Scorer, opts IdentifyOptions) ([]IdentificationResult, error) {
	ks := opts.Ks
	if ks == nil {
		ks = []int{1, 3, 5}
	}
	every := opts.UnknownEvery
	if every == 0 {
		every = 5
	}
	byID := map[string][]int{}
	for i, s := range samples {
		if s.Identity == "" {
			return nil, fmt.Errorf("%w: sample %d (%q) has no identity", ErrIdentify, i, s.Name)
		}
		byID[s.Identity] = append(byID[s.Identity], i)
	}
	ids := make([]string, 0, len(byID))
	for id, idx := range byID {
		ids = append(ids, id)
		sort.SliceStable(idx, func(a, b int) bool { return samples[idx[a]].Name < samples[idx[b]].Name })
	}
	sort.Strings(ids)
	var known, unknown []string
	for i, id := range ids {
		if every > 0 && (i+1)%every == 0 {
			unknown = append(unknown, id)
		} else {
			known = append(known, id)
		}
	}
	var unknownProbes []int
	for _, id := range unknown {
		unknownProbes = append(unknownProbes, byID[id]...)
	}

	out := make([]IdentificationResult, 0, len(ks))
	for _, k := range ks {
		if k < 1 {
			return nil, fmt.Errorf("%w: K=%d, want at least 1", ErrIdentify, k)
		}
		res := IdentificationResult{K: k, UnknownIdentities: len(unknown), UnknownProbes: len(unknownProbes), Threshold: opts.Threshold}
		type entry struct {
			id       string
			enrolled []int
		}
		var gallery []entry
		var mated []struct{ probe, owner int }
		for _, id := range known {
			var enrolled, probes []int
			for _, i := range byID[id] {
				if len(enrolled) < k && samples[i].Acquired {
					enrolled = append(enrolled, i)
				} else {
					probes = append(probes, i)
				}
			}
			if len(enrolled) < k || len(probes) == 0 {
				res.Skipped++
				continue
			}
			for _, p := range probes {
				mated = append(mated, struct{ probe, owner int }{p, len(gallery)})
			}
			gallery = append(gallery, entry{id, enrolled})
		}
		res.Identities = len(gallery)
		if len(gallery) < 2 {
			res.Note = fmt.Sprintf("not enough data: %d identities can be enrolled with K=%d, need 2", len(gallery), k)
			res.UnknownProbes = 0
			out = append(out, res)
			continue
		}
		// rank scores probe p against the gallery (into scores) and returns
		// the best entry and whether no other entry ties with it.
		scores := make([]float64, len(gallery))
		rank := func(p int) (best int, unique bool, err error) {
			best = -1
			for g, e := range gallery {
				v := score(p, e.enrolled)
				if math.IsNaN(v) {
					return 0, false, fmt.Errorf("%w: score of probe %q against %q is NaN", ErrIdentify, samples[p].Name, e.id)
				}
				scores[g] = v
				if best == -1 || better(v, scores[best], opts.HigherIsMatch) {
					best, unique = g, true
				} else if v == scores[best] {
					unique = false
				}
			}
			return best, unique, nil
		}
		for _, m := range mated {
			res.Probes++
			if !samples[m.probe].Acquired {
				res.ProbeFTA++
				if opts.Threshold != nil {
					res.FalseNegatives++
				}
				continue
			}
			best, unique, err := rank(m.probe)
			if err != nil {
				return nil, err
			}
			hit := best == m.owner && unique
			if hit {
				res.Rank1Correct++
			}
			if opts.Threshold != nil && (!hit || !Matches(scores[best], *opts.Threshold, opts.HigherIsMatch)) {
				res.FalseNegatives++
			}
		}
		res.Rank1 = float64(res.Rank1Correct) / float64(res.Probes)
		if opts.Threshold != nil {
			for _, p := range unknownProbes {
				if !samples[p].Acquired {
					continue
				}
				best, _, err := rank(p)
				if err != nil {
					return nil, err
				}
				if Matches(scores[best], *opts.Threshold, opts.HigherIsMatch) {
					res.FalsePositives++
				}
			}
			fnir := float64(res.FalseNegatives) / float64(res.Probes)
			res.FNIR = &fnir
			if len(unknownProbes) > 0 {
				fpir := float64(res.FalsePositives) / float64(len(unknownProbes))
				res.FPIR = &fpir
			} else {
				res.Note = "no unknown identities: FPIR not measured"
			}
		}
		out = append(out, res)
	}
	return out, nil
}

func better(a, b float64, higherIsMatch bool) bool {
	if higherIsMatch {
		return a > b
	}
	return a < b
}
