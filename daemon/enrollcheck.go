package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/facegate/facegate/daemon/mqtt"
	"github.com/facegate/facegate/decision"
	"github.com/facegate/facegate/enroll"
	"github.com/facegate/facegate/enroll/store"
	"github.com/facegate/facegate/infer"
)

// Issue 13: what an enrollment must never do is build a template that
// lets the wrong person in. Before a person's templates are written the
// gate checks, with every tower the photos have, fused by the decision
// calibration's head for that set of towers (the live 1:N decision's
// logit):
//
//   - duplicate: a photo's face matches another enrolled person (one
//     person under two ids). This is a 1:N question asked of the whole
//     gallery, so its threshold follows the gallery size as the door's
//     does: the best other person's fused logit must clear the threshold
//     at which a photo of someone not enrolled would be taken for one of
//     the N others with probability at most FACEGATE_ENROLL_DUPLICATE_RATE
//     per request (duplicateThreshold). A per-comparison threshold would
//     refuse a growing share of newcomers as the gallery grows.
//   - conflict: the photos of one request do not match each other, or a
//     photo added to a person does not match their enrolled photos (two
//     people under one id). These stay per comparison and strict: the
//     fused logit must clear the threshold of false-match rate
//     FACEGATE_TARGET_FMR for one comparison (pairThreshold). A false
//     conflict costs a retry with force; a missed one puts two people
//     under one id.
//
// Either is refused unless the request says force, and then logged as an
// audit entry (key id, request id, the person matched).
//
// Both thresholds come from the calibration's per-visit impostor model
// (decision.VisitModel: the peak evidence of a stranger's visit of up to
// MaxFrames looks against one enrolled identity). The calibration has no
// one-look model; a photo is one look, and one look's logit never exceeds
// the visit's peak, so the visit model's exceedance bounds a photo's:
// both rates hold as upper bounds, the duplicate check errs towards
// letting a duplicate through (it is logged and reported as photos that
// match, docs/enrollment.md) and the conflict check towards refusing.

// enrollCheck is a refused duplicate or conflict.
type enrollCheck struct {
	code  mqtt.Code
	index int    // the photo
	with  string // duplicate: the person matched
	msg   string
}

// enrollRule is how the duplicate and conflict checks decide.
type enrollRule struct {
	fusion *Fusion
	towers []*Tower // Raw converts their scores to the calibration's units
	// dupRate is the false-duplicate rate per request at the gallery's
	// size (FACEGATE_ENROLL_DUPLICATE_RATE).
	dupRate float64
	// pairFMR is the false-match rate per comparison of the conflict
	// checks (FACEGATE_TARGET_FMR).
	pairFMR float64
}

// enrollRule is the rule of the service's configuration.
func (s *Service) enrollRule() enrollRule {
	return enrollRule{fusion: s.fusion, towers: s.towers, dupRate: s.cfg.EnrollDuplicateRate, pairFMR: s.cfg.TargetFMR}
}

// checkEnrollment runs the duplicate and conflict checks on a request's
// photos (one TowerEmbeddings each) for subject id.
func (s *Service) checkEnrollment(id string, op mqtt.EnrollOp, embs []TowerEmbeddings) *enrollCheck {
	c, err := s.enrollRule().check(s.gallery, id, op, embs)
	if err != nil {
		// The towers are calibrated at start (NewFusion): this is a bug,
		// and refusing is the safe answer.
		return &enrollCheck{code: mqtt.CodeInternal, msg: fmt.Sprintf("enrollment check: %v", err)}
	}
	return c
}

// duplicateThreshold is the fused-logit threshold of the duplicate check
// for a request of photos photos against others enrolled people, scored
// with towers key: the request is others·visits comparisons, each of which
// may exceed the threshold with probability at most
// 1 − (1 − rate)^(1/(others·visits)), so that a request of someone not
// enrolled is refused as a duplicate with probability at most rate
// (decision.Calibration.PeakThreshold: no margin, so not the gallery
// curves of the live rule).
//
// visits is the number of photos, unless the calibration's impostor model
// is of the visit's highest logit (aggregate max): it is then fitted on a
// stranger shown in up to MaxFrames different photos (LFW photos are its
// looks), and the highest logit of up to MaxFrames photos of a request
// against one enrolled person is one such visit, so visits =
// ⌈photos / MaxFrames⌉, a lower threshold for requests of several photos
// at the same rate. A model of the quality-weighted mean (the shipped
// calibration, aggregate "") bounds one look but not the highest of
// several, so each photo counts.
func (r enrollRule) duplicateThreshold(key string, others, photos int) (float64, error) {
	looks := 1
	if v, ok := r.fusion.cal.Visits[key]; ok && v.Aggregate == decision.Max && v.MaxFrames > 1 {
		looks = v.MaxFrames
	}
	visits := (max(photos, 1) + looks - 1) / looks
	return r.fusion.cal.PeakThreshold(key, max(others, 1)*visits, r.dupRate)
}

// pairThreshold is the fused-logit threshold of one conflict comparison
// scored with towers key: two different people exceed it with probability
// at most pairFMR.
func (r enrollRule) pairThreshold(key string) (float64, error) {
	return r.fusion.cal.PeakThreshold(key, 1, r.pairFMR)
}

// fused is the fused logit of raw scores (one per tower, NaN where a side
// has no embedding of it) and the calibration key of the towers used;
// false when no calibrated subset has scores.
func (f *Fusion) fused(raw []float64) (logit float64, key string, ok bool) {
	var set uint64
	var vals []float64
	for i, r := range raw {
		if !math.IsNaN(r) {
			set |= 1 << i
			vals = append(vals, r)
		}
	}
	sc, ok := f.scorers[set]
	if !ok {
		return 0, "", false
	}
	return sc.Logit(vals), sc.Key, true
}

// dupMatch is the enrolled person other than the subject whose fused
// logit against a photo is highest.
type dupMatch struct {
	id        string
	logit     float64
	key       string
	threshold float64
}

// closestOther scores probe against the gallery over every tower and
// returns the best person other than id, with the duplicate threshold
// for others people and photos photos; false when nobody else is
// enrolled (or scored by a calibrated set of towers).
func (r enrollRule) closestOther(g *Gallery, id string, probe TowerEmbeddings, others, photos int) (dupMatch, bool, error) {
	var best dupMatch
	found := false
	cands := g.Candidates(probe, candidatesPerTower, func(t int, s enroll.Score) float64 { return r.towers[t].Raw(s) })
	for _, c := range cands {
		if c.ID == id {
			continue
		}
		l, key, ok := r.fusion.fused(c.Raw)
		if !ok {
			continue
		}
		if !found || l > best.logit {
			best, found = dupMatch{id: c.ID, logit: l, key: key}, true
		}
	}
	if !found {
		return best, false, nil
	}
	th, err := r.duplicateThreshold(best.key, others, photos)
	if err != nil {
		return best, false, err
	}
	best.threshold = th
	return best, true, nil
}

// check runs the duplicate and conflict checks on a request's photos for
// subject id against gallery g: nil when the request may go ahead.
func (r enrollRule) check(g *Gallery, id string, op mqtt.EnrollOp, embs []TowerEmbeddings) (*enrollCheck, error) {
	others := g.Len()
	if g.Has(id) {
		others--
	}
	for i, e := range embs {
		m, ok, err := r.closestOther(g, id, e, others, len(embs))
		if err != nil {
			return nil, fmt.Errorf("photo %d: %w", i, err)
		}
		// A person scored by a subset of towers (enrolled before a tower
		// was added) is held to that subset's threshold.
		if ok && m.logit >= m.threshold {
			return &enrollCheck{code: mqtt.CodeDuplicate, index: i, with: m.id,
				msg: fmt.Sprintf("photo %d matches enrolled person %s (fused logit %.2f, threshold %.2f for %d enrolled at false-duplicate rate %g, towers %s): one person under two ids? Use add_images on %s, or force",
					i, m.id, m.logit, m.threshold, others, r.dupRate, m.key, m.id)}, nil
		}
	}
	for i := range embs {
		for j := i + 1; j < len(embs); j++ {
			raw := make([]float64, len(r.towers))
			for t, tw := range r.towers {
				raw[t] = math.NaN()
				if t < len(embs[i]) && t < len(embs[j]) && embs[i][t] != nil && embs[j][t] != nil {
					raw[t] = tw.Raw(tw.Scorer.Compare(embs[i][t], embs[j][t]))
				}
			}
			l, key, ok := r.fusion.fused(raw)
			if !ok {
				return nil, fmt.Errorf("photos %d and %d: no calibrated towers in common", i, j)
			}
			th, err := r.pairThreshold(key)
			if err != nil {
				return nil, err
			}
			if l < th {
				return &enrollCheck{code: mqtt.CodeConflict, index: j,
					msg: fmt.Sprintf("photos %d and %d do not match each other (fused logit %.2f, threshold %.2f at false-match rate %g, towers %s): are they the same person? Send photos of one person, or force", i, j, l, th, r.pairFMR, key)}, nil
			}
		}
	}
	if op == mqtt.OpAddImages {
		for i, e := range embs {
			raw, ok := g.scoreAgainst(id, e, r.towers)
			if !ok {
				continue // not enrolled any more: AddImages says so
			}
			l, key, ok := r.fusion.fused(raw)
			if !ok {
				continue // no tower in common: nothing to compare
			}
			th, err := r.pairThreshold(key)
			if err != nil {
				return nil, err
			}
			if l < th {
				return &enrollCheck{code: mqtt.CodeConflict, index: i,
					msg: fmt.Sprintf("photo %d does not match %s's enrolled photos (fused logit %.2f, threshold %.2f at false-match rate %g, towers %s): another person? Use a photo of %s, or force", i, id, l, th, r.pairFMR, key, id)}, nil
			}
		}
	}
	return nil, nil
}

// scoreAgainst is probe's raw score against id's templates per tower (the
// closest template; NaN where either side has none of that tower), false
// when id is not enrolled.
func (g *Gallery) scoreAgainst(id string, probe TowerEmbeddings, towers []*Tower) ([]float64, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	raw := make([]float64, len(g.towers))
	found := false
	for t, tw := range g.towers {
		raw[t] = math.NaN()
		if _, ok := tw.m.Get(id); ok {
			found = true
		}
		if t >= len(probe) || probe[t] == nil || t >= len(towers) {
			continue
		}
		if m, err := tw.m.Verify(id, probe[t]); err == nil {
			raw[t] = towers[t].Raw(m.Score)
		}
	}
	return raw, found
}

// exportPerson is everything stored about id except the embeddings (op
// get, the privacy export).
func (g *Gallery) exportPerson(id string) (*mqtt.PersonRecord, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	p, err := g.st.Get(id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s", enroll.ErrNotFound, id)
		}
		return nil, err
	}
	rec := &mqtt.PersonRecord{ID: p.ID, Name: p.DisplayName, Created: p.Created, Updated: p.Updated, Templates: len(p.Templates),
		Source: fmt.Sprintf("%s key=%s request=%s", p.Source.Kind, p.Source.KeyID, p.Source.RequestID)}
	models := map[string]bool{}
	for _, t := range p.Templates {
		models[t.Model.String()] = true
	}
	for m := range models {
		rec.Models = append(rec.Models, m)
	}
	sort.Strings(rec.Models)
	for _, ph := range p.Photos {
		rec.Photos = append(rec.Photos, mqtt.StoredPhoto{SHA256: ph.SHA256, Verdict: ph.Verdict, Quality: ph.Quality, Added: ph.Added})
	}
	return rec, nil
}

// photoHashes maps every person to the sha256 of their enrollment photos
// (list replies: what a bulk import compares against).
func (g *Gallery) photoHashes() map[string][]string {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := map[string][]string{}
	people, err := g.st.List()
	if err != nil {
		g.log.Warn("list photo records", "err", err)
		return out
	}
	for _, p := range people {
		for _, ph := range p.Photos {
			out[p.ID] = append(out[p.ID], ph.SHA256)
		}
	}
	return out
}

// photoRecord is the stored record of an accepted enrollment photo.
func photoRecord(data []byte, rep mqtt.PhotoReport, now time.Time) store.Photo {
	sum := sha256.Sum256(data)
	return store.Photo{SHA256: hex.EncodeToString(sum[:]), Verdict: rep.Verdict, Quality: rep.Quality, Added: now.UTC()}
}

// choiceFor is the face choice a request makes for image i (automatic
// when none).
func choiceFor(fs []mqtt.FaceChoice, i int) infer.SubjectChoice {
	for _, f := range fs {
		if f.Image != i {
			continue
		}
		if f.Index != nil {
			return infer.SubjectChoice{Index: *f.Index}
		}
		if f.Box != nil {
			b := f.Box
			return infer.SubjectChoice{Index: -1, ByBox: true, Box: [4]float64{float64(b.X), float64(b.Y), float64(b.X + b.W), float64(b.Y + b.H)}}
		}
	}
	return infer.Auto
}
