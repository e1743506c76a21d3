package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/facegate/facegate/daemon/mqtt"
	"github.com/facegate/facegate/enroll"
	"github.com/facegate/facegate/enroll/store"
	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/manifest"
)

// Issue 13: what an enrollment must never do is build a template that
// lets the wrong person in. Before a person's templates are written the
// gate checks, with the 1:1 threshold of the first tower:
//
//   - duplicate: a photo's face matches another enrolled person (one
//     person under two ids);
//   - conflict: the photos of one request do not match each other, or a
//     photo added to a person does not match their enrolled photos (two
//     people under one id).
//
// Either is refused unless the request says force, and then logged as an
// audit entry (key id, request id, the person matched).

// enrollCheck is a refused duplicate or conflict.
type enrollCheck struct {
	code  mqtt.Code
	index int    // the photo
	with  string // duplicate: the person matched
	msg   string
}

// checkEnrollment runs the duplicate and conflict checks on the first
// tower's embeddings of a request's photos for subject id.
func (s *Service) checkEnrollment(id string, op mqtt.EnrollOp, embs [][]float32) *enrollCheck {
	th := s.thresh
	for i, e := range embs {
		if m, ok := s.gallery.closestOther(id, e); ok && enroll.Accepts(m.Score, th) {
			return &enrollCheck{code: mqtt.CodeDuplicate, index: i, with: m.ID,
				msg: fmt.Sprintf("photo %d matches enrolled person %s (score %s, threshold %.4g): one person under two ids? Use add_images on %s, or force", i, m.ID, scoreText(m.Score, th), th.Value, m.ID)}
		}
	}
	sc := s.gallery.scorer()
	for i := range embs {
		for j := i + 1; j < len(embs); j++ {
			if sc := sc.Compare(embs[i], embs[j]); !enroll.Accepts(sc, th) {
				return &enrollCheck{code: mqtt.CodeConflict, index: j,
					msg: fmt.Sprintf("photos %d and %d do not match each other (score %s, threshold %.4g): are they the same person? Send photos of one person, or force", i, j, scoreText(sc, th), th.Value)}
			}
		}
	}
	if op == mqtt.OpAddImages {
		for i, e := range embs {
			m, err := s.gallery.Verify(id, e)
			if err == nil && !enroll.Accepts(m.Score, th) {
				return &enrollCheck{code: mqtt.CodeConflict, index: i,
					msg: fmt.Sprintf("photo %d does not match %s's enrolled photos (score %s, threshold %.4g): another person? Use a photo of %s, or force", i, id, scoreText(m.Score, th), th.Value, id)}
			}
		}
	}
	return nil
}

func scoreText(s enroll.Score, th manifest.Threshold) string {
	switch th.Score {
	case string(manifest.MetricCosine):
		return fmt.Sprintf("%.4f", s.Similarity)
	case "probability":
		return fmt.Sprintf("%.4f", s.Probability)
	}
	return fmt.Sprintf("%.4f", s.Distance)
}

// closestOther is the enrolled person other than id whose templates are
// closest to probe (first tower).
func (g *Gallery) closestOther(id string, probe []float32) (enroll.PersonMatch, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.m.Len() == 0 {
		return enroll.PersonMatch{}, false
	}
	res, err := g.m.Identify(probe, 2)
	if err != nil {
		return enroll.PersonMatch{}, false
	}
	for _, m := range res.Ranked {
		if m.ID != id {
			return m, true
		}
	}
	return enroll.PersonMatch{}, false
}

func (g *Gallery) scorer() enroll.Scorer {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.m.Scorer()
}

// recordPhotos stores what is kept about the photos a person's templates
// came from (sha256, verdict, quality): replacing the earlier records
// (add, replace) or appended (add_images). The templates are already
// written; a failure here leaves the person enrolled without photo
// records (a bulk import then sees other photos and reports it).
func (g *Gallery) recordPhotos(id string, photos []store.Photo, appendTo bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	p, err := g.st.Get(id)
	if err != nil {
		return fmt.Errorf("record photos of %s: %w", id, err)
	}
	if appendTo {
		photos = append(append([]store.Photo(nil), p.Photos...), photos...)
	}
	p.Photos = photos
	if err := g.st.Put(p); err != nil {
		return fmt.Errorf("record photos of %s: %w", id, err)
	}
	return nil
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
