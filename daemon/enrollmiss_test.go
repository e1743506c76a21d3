//go:build measure

package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/facegate/facegate/enroll/store"
	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/imageio"
)

// The duplicate check at a gallery of 1,000 real people (issue 13), a
// measurement rather than a check of CI: about 3,000 LFW photos embedded
// by both towers, some 3 minutes on 2 cores. Run it with
//
//	go test -tags measure ./daemon/ -run TestEnrollDuplicateMissRateThousand -v -timeout 30m
//
// The gallery is the first photo of every LFW person with two photos or
// more, topped up to 1,000 with people who have one. Then, at N = 1,000:
//   - missed duplicates: each enrolled person's second photo, under a new
//     id, not refused as a duplicate of that person;
//   - false duplicates: a photo of each LFW person not enrolled refused as
//     a duplicate of someone.
//
// Both are counted at several FACEGATE_ENROLL_DUPLICATE_RATE values from
// the same scores (the fused logit of the best other person, every tower,
// every template), beside the old single-tower check at FMR 1e-3.
func TestEnrollDuplicateMissRateThousand(t *testing.T) {
	const n = 1000
	e, r := realEnrollment(t)
	g := testGallery(t, e.Towers)
	data := infer.TestDataDir(t)
	dirs, err := os.ReadDir(filepath.Join(data, "faces"))
	if err != nil {
		t.Fatal(err)
	}
	type person struct {
		name   string
		photos []string
	}
	var multi, single []person
	for _, d := range dirs {
		if !strings.HasPrefix(d.Name(), "lfw__") {
			continue
		}
		fs, err := os.ReadDir(filepath.Join(data, "faces", d.Name()))
		if err != nil {
			t.Fatal(err)
		}
		p := person{name: d.Name()}
		for _, f := range fs {
			p.photos = append(p.photos, filepath.Join("faces", d.Name(), f.Name()))
		}
		sort.Strings(p.photos)
		if len(p.photos) >= 2 {
			multi = append(multi, p)
		} else {
			single = append(single, p)
		}
	}
	embed := func(rel string) (TowerEmbeddings, bool) {
		b, err := os.ReadFile(filepath.Join(data, rel))
		if err != nil {
			t.Fatal(err)
		}
		embs, _, err := e.EmbedEnrollImage(0, b, imageio.Limits{}, infer.Auto)
		var ee *EnrollError
		if errors.As(err, &ee) {
			return nil, false
		}
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		return embs, true
	}
	start := time.Now()
	enrolled := map[string]bool{}
	var strangers []person
	for _, p := range append(append([]person(nil), multi...), single...) {
		if g.Len() >= n {
			strangers = append(strangers, p)
			continue
		}
		emb, ok := embed(p.photos[0])
		if !ok {
			continue
		}
		if err := g.Enroll(p.name, p.name, store.Source{Kind: "test"}, []TowerEmbeddings{emb}); err != nil {
			t.Fatal(err)
		}
		enrolled[p.name] = true
	}
	if g.Len() != n {
		t.Fatalf("gallery of %d, want %d", g.Len(), n)
	}
	// margin: the best other person's fused logit minus the duplicate
	// threshold at the default rate; right: whether that person is the one
	// the photo is of.
	type score struct {
		logit float64
		key   string
		right bool
	}
	var dups, strange []score
	for _, p := range multi {
		if !enrolled[p.name] {
			continue
		}
		emb, ok := embed(p.photos[1])
		if !ok {
			continue
		}
		m, ok, err := r.closestOther(g, "new-id", emb, n, 1)
		if err != nil || !ok {
			t.Fatalf("%s: %v", p.name, err)
		}
		dups = append(dups, score{m.logit, m.key, m.id == p.name})
	}
	for _, p := range strangers {
		emb, ok := embed(p.photos[0])
		if !ok {
			continue
		}
		m, ok, err := r.closestOther(g, p.name, emb, n, 1)
		if err != nil || !ok {
			t.Fatalf("%s: %v", p.name, err)
		}
		strange = append(strange, score{m.logit, m.key, false})
	}
	t.Logf("N = %d: %d second photos of enrolled people, %d strangers; %s", n, len(dups), len(strange), time.Since(start).Round(time.Second))
	var missedDefault int
	for _, rate := range []float64{0.01, 0.03, 0.1, 0.3} {
		rr := r
		rr.dupRate = rate
		exceeds := func(s score) bool {
			th, err := rr.duplicateThreshold(s.key, n, 1)
			if err != nil {
				t.Fatal(err)
			}
			return s.logit >= th
		}
		caught, wrong, falseDup := 0, 0, 0
		for _, s := range dups {
			switch {
			case exceeds(s) && s.right:
				caught++
			case exceeds(s):
				wrong++ // refused, naming another person
			}
		}
		for _, s := range strange {
			if exceeds(s) {
				falseDup++
			}
		}
		th, _ := rr.duplicateThreshold("dlib+sface", n, 1)
		missed := len(dups) - caught - wrong
		t.Logf("rate %g (dlib+sface threshold %.2f): duplicates caught %d of %d (%.1f %%), missed %d (%.1f %%), refused naming another person %d; false duplicates %d of %d strangers (%.2f %%)",
			rate, th, caught, len(dups), 100*float64(caught)/float64(len(dups)), missed, 100*float64(missed)/float64(len(dups)), wrong,
			falseDup, len(strange), 100*float64(falseDup)/float64(len(strange)))
		if rate == r.dupRate {
			missedDefault = missed
		}
		if falseDup > int(3*rate*float64(len(strange)))+5 {
			t.Errorf("rate %g: %d false duplicates in %d requests", rate, falseDup, len(strange))
		}
	}
	if len(dups) < 500 || float64(missedDefault) > 0.2*float64(len(dups)) {
		t.Errorf("%d duplicates measured, %d missed at the default rate", len(dups), missedDefault)
	}
}
