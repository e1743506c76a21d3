package daemon

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/facegate/facegate/daemon/mqtt"
	"github.com/facegate/facegate/decision"
	"github.com/facegate/facegate/enroll"
	"github.com/facegate/facegate/enroll/store"
	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/imageio"
)

// shippedEnrollRule is the enrollment rule with the shipped calibration
// (models/calibration/decision.json) and the default rates, for towers
// that need no model (thresholds only).
func shippedEnrollRule(t *testing.T) enrollRule {
	t.Helper()
	cal, err := decision.Load(repoCalibration(t))
	if err != nil {
		t.Fatal(err)
	}
	var towers []*Tower
	for _, m := range []string{"dlib-resnet-v1", "sface-2021dec"} {
		norm, ok := calTower(cal, m)
		if !ok {
			t.Fatalf("the shipped calibration lacks %s", m)
		}
		towers = append(towers, &Tower{Norm: norm})
	}
	f, err := NewFusion(cal, towers)
	if err != nil {
		t.Fatal(err)
	}
	return enrollRule{fusion: f, towers: towers, dupRate: 0.01, pairFMR: 0.001}
}

// The duplicate threshold follows the gallery: it rises with the people
// enrolled and with the photos of a request (more comparisons, more
// chances of a false match), falls as the rate allowed grows, and at a
// gallery of one it is the conflict check's per-comparison threshold at
// the same rate.
func TestDuplicateThresholdRisesWithGallerySize(t *testing.T) {
	r := shippedEnrollRule(t)
	for _, key := range []string{"dlib+sface", "dlib", "sface"} {
		// The cases below are of a 3-look model, first of the mean, then
		// of the max, whatever the shipped calibration's aggregate and
		// budget (the tail, hence each threshold, stays the shipped one).
		v0 := r.fusion.cal.Visits[key]
		v0.Aggregate, v0.MaxFrames = decision.Mean, 3
		r.fusion.cal.Visits[key] = v0
		prev := math.Inf(-1)
		for _, n := range []int{1, 10, 100, 1000, 10000, 100000} {
			th, err := r.duplicateThreshold(key, n, 1)
			if err != nil {
				t.Fatal(err)
			}
			if !(th > prev) {
				t.Errorf("%s: threshold %.3f at N=%d does not rise from %.3f", key, th, n, prev)
			}
			t.Logf("%s: N=%d threshold %.3f", key, n, th)
			prev = th
		}
		// Each photo is a comparison with the shipped calibration (a model
		// of the mean of a visit's looks); with a model of the visit's
		// highest logit, up to MaxFrames photos are one visit.
		one, _ := r.duplicateThreshold(key, 1000, 1)
		three, _ := r.duplicateThreshold(key, 1000, 3)
		n3000, _ := r.duplicateThreshold(key, 3000, 1)
		if v := r.fusion.cal.Visits[key]; v.Aggregate == decision.Max || three != n3000 || !(three > one) {
			t.Errorf("%s (aggregate %q): at N=1000, 1 photo %.3f, 3 photos %.3f (want N=3000's %.3f)", key, v.Aggregate, one, three, n3000)
		}
		v := r.fusion.cal.Visits[key]
		v.Aggregate = decision.Max
		r.fusion.cal.Visits[key] = v
		maxOne, _ := r.duplicateThreshold(key, 1000, 1)
		maxThree, _ := r.duplicateThreshold(key, 1000, 3)
		maxFour, _ := r.duplicateThreshold(key, 1000, 4)
		maxN2000, _ := r.duplicateThreshold(key, 2000, 1)
		if v.MaxFrames != 3 || maxThree != maxOne || maxFour != maxN2000 || maxOne != one {
			t.Errorf("%s, aggregate max: at N=1000, 1 photo %.3f, 3 photos %.3f, 4 photos %.3f (want N=2000's %.3f)", key, maxOne, maxThree, maxFour, maxN2000)
		}
		v.Aggregate = ""
		r.fusion.cal.Visits[key] = v
		loose := r
		loose.dupRate = 0.1
		if l, _ := loose.duplicateThreshold(key, 1000, 1); !(l < one) {
			t.Errorf("%s: rate 0.1 gives %.3f, not below rate 0.01's %.3f", key, l, one)
		}
		pair := r
		pair.pairFMR = r.dupRate
		p, _ := pair.pairThreshold(key)
		if d, _ := r.duplicateThreshold(key, 1, 1); math.Abs(d-p) > 1e-12 {
			t.Errorf("%s: N=1 duplicate threshold %.4f != per-comparison %.4f at the same rate", key, d, p)
		}
	}
	// An empty gallery (nobody else) is held to N=1, not refused.
	if th, err := r.duplicateThreshold("dlib+sface", 0, 1); err != nil || math.IsNaN(th) {
		t.Fatalf("empty gallery: %v %v", th, err)
	}
	if _, err := r.duplicateThreshold("vgg", 10, 1); !errors.Is(err, decision.ErrUnknownTowers) {
		t.Fatalf("unknown towers: %v", err)
	}
}

// realEnrollment loads the detector and both towers with the shipped
// calibration, and returns an engine able to embed enrollment photos and
// the enrollment rule.
func realEnrollment(t *testing.T) (*Engine, enrollRule) {
	t.Helper()
	r := shippedEnrollRule(t)
	p := testPipeline(t) // the detector and dlib-resnet-v1
	towers := []*Tower{{Emb: p.Emb}}
	sm, err := infer.Load(infer.TestModelDir(t, "sface-2021dec"), infer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sm.Close() })
	se, err := infer.NewEmbedder(sm)
	if err != nil {
		t.Fatal(err)
	}
	towers = append(towers, &Tower{Emb: se})
	for i, tw := range towers {
		man := tw.Emb.Model().Manifest()
		if tw.Scorer, err = enroll.NewScorer(man); err != nil {
			t.Fatal(err)
		}
		tw.Store = store.Model{Name: man.Name, Version: man.Version}
		tw.Norm = r.towers[i].Norm
		if tw.Norm.Model != man.Name {
			t.Fatalf("tower %d is %s, calibration says %s", i, man.Name, tw.Norm.Model)
		}
	}
	r.towers = towers
	if r.fusion, err = NewFusion(r.fusion.cal, towers); err != nil {
		t.Fatal(err)
	}
	return &Engine{EngineConfig: EngineConfig{Pipe: p, Towers: towers}}, r
}

func embedPhoto(t *testing.T, e *Engine, rel string) TowerEmbeddings {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(infer.TestDataDir(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	embs, _, err := e.EmbedEnrollImage(0, b, imageio.Limits{}, infer.Auto)
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return embs
}

// randomUnit is a random direction of dim dimensions: a stand-in
// enrolled person nobody resembles.
func randomUnit(rng *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	var n float64
	for i := range v {
		x := rng.NormFloat64()
		v[i], n = float32(x), n+x*x
	}
	for i := range v {
		v[i] /= float32(math.Sqrt(n))
	}
	return v
}

// At a gallery of 1,000 the raised threshold still refuses a clear
// duplicate (Tony Blair's other photo under a new id) and lets a stranger
// (Colin Powell) in; the conflict checks still refuse another person's
// photo added to Tony and two people in one request, and accept his own.
// The 999 others are random directions: they set N, not the scores.
func TestEnrollCheckDuplicateAtThousand(t *testing.T) {
	e, r := realEnrollment(t)
	g := testGallery(t, e.Towers)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 999 {
		emb := TowerEmbeddings{randomUnit(rng, e.Towers[0].Emb.Dim()), randomUnit(rng, e.Towers[1].Emb.Dim())}
		if err := g.Enroll(fmt.Sprintf("p%04d", i), "", store.Source{Kind: "test"}, []TowerEmbeddings{emb}); err != nil {
			t.Fatal(err)
		}
	}
	blair1 := embedPhoto(t, e, "faces/lfw__Tony_Blair/010.jpg")
	blair2 := embedPhoto(t, e, "faces/lfw__Tony_Blair/003.jpg")
	powell := embedPhoto(t, e, "faces/lfw__Colin_Powell/001.jpg")
	if err := g.Enroll("tony", "Tony", store.Source{Kind: "test"}, []TowerEmbeddings{blair1}); err != nil {
		t.Fatal(err)
	}
	if g.Len() != 1000 {
		t.Fatalf("gallery of %d", g.Len())
	}
	check := func(id string, op mqtt.EnrollOp, embs ...TowerEmbeddings) *enrollCheck {
		t.Helper()
		c, err := r.check(g, id, op, embs)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := check("tony2", mqtt.OpAdd, blair2)
	if c == nil || c.code != mqtt.CodeDuplicate || c.with != "tony" || !strings.Contains(c.msg, "for 1000 enrolled") {
		t.Fatalf("Blair's other photo at N=1000: %+v", c)
	}
	t.Log(c.msg)
	if c := check("colin", mqtt.OpAdd, powell); c != nil {
		t.Fatalf("a stranger refused: %+v", c)
	}
	if c := check("mixed", mqtt.OpAdd, powell, powell); c != nil {
		t.Fatalf("one photo twice: %+v", c)
	}
	if c := check("tony", mqtt.OpAddImages, blair2); c != nil {
		t.Fatalf("Tony's own photo added to him: %+v", c)
	}
	if c := check("tony", mqtt.OpAddImages, powell); c == nil || c.code != mqtt.CodeConflict {
		t.Fatalf("Powell added to Tony: %+v", c)
	}
	if err := g.Delete("tony"); err != nil {
		t.Fatal(err)
	}
	if c := check("mixed", mqtt.OpAdd, blair2, powell); c == nil || c.code != mqtt.CodeConflict || c.index != 1 {
		t.Fatalf("two people in one request: %+v", c)
	}
}

// lfwPeople is up to n LFW identities in name order with their photos
// (paths relative to the data folder), skipping the ones aliases.tsv
// lists under another source too.
func lfwPeople(t *testing.T, n int) map[string][]string {
	t.Helper()
	data := infer.TestDataDir(t)
	alias, err := os.ReadFile(filepath.Join(data, "aliases.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := os.ReadDir(filepath.Join(data, "faces"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, d := range dirs {
		name := d.Name()
		if !strings.HasPrefix(name, "lfw__") || strings.Contains(string(alias), name) {
			continue
		}
		files, err := os.ReadDir(filepath.Join(data, "faces", name))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			out[name] = append(out[name], filepath.Join("faces", name, f.Name()))
		}
		sort.Strings(out[name])
		if len(out) == n {
			break
		}
	}
	if len(out) < n {
		t.Fatalf("%d LFW people, want %d", len(out), n)
	}
	return out
}

// The false-duplicate rate measured, as a bulk import meets it: 300
// distinct LFW people enrolled one photo each in name order, each checked
// against everyone before them (N = 0..299). At the default rate (1e-2
// per request) the expected number of false refusals is at most 3; the
// test allows 9 (Poisson(3) reaches 9 with probability 0.4 %). The old
// check (the first tower alone at its 1:1 threshold, FMR 1e-3) is
// measured beside it on the same photos. Then the second photo of each
// person who has one, under a new id, must be caught as a duplicate of
// that person at N = 300 for at least 90 % of them. About 25 s on 2 cores
// (some 420 photos embedded by both towers).
func TestEnrollDuplicateRateLFW(t *testing.T) {
	e, r := realEnrollment(t)
	g := testGallery(t, e.Towers)
	people := lfwPeople(t, 300)
	names := make([]string, 0, len(people))
	for n := range people {
		names = append(names, n)
	}
	sort.Strings(names)
	man := e.Towers[0].Emb.Model().Manifest()
	oldTh, ok := man.ThresholdFor(0.001, string(man.Metric))
	if !ok {
		t.Fatalf("%s has no threshold at FMR 1e-3", man.Name)
	}
	data := infer.TestDataDir(t)
	embed := func(rel string) (TowerEmbeddings, bool) {
		b, err := os.ReadFile(filepath.Join(data, rel))
		if err != nil {
			t.Fatal(err)
		}
		embs, _, err := e.EmbedEnrollImage(0, b, imageio.Limits{}, infer.Auto)
		var ee *EnrollError
		if errors.As(err, &ee) {
			return nil, false // refused for quality, as the import would be
		}
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		return embs, true
	}
	start := time.Now()
	type result struct{ checked, refused, oldRefused int }
	var quarters [4]result
	var bestLogits []float64 // best other's logit minus its threshold, per request
	enrolled := 0
	for i, name := range names {
		emb, ok := embed(people[name][0])
		if !ok {
			continue
		}
		q := &quarters[i*4/len(names)]
		if g.Len() > 0 {
			q.checked++
			c, err := r.check(g, name, mqtt.OpAdd, []TowerEmbeddings{emb})
			if err != nil {
				t.Fatal(err)
			}
			if c != nil {
				q.refused++
				t.Logf("false duplicate at N=%d: %s: %s", g.Len(), name, c.msg)
			}
			if m, ok, err := r.closestOther(g, name, emb, g.Len(), 1); err == nil && ok {
				bestLogits = append(bestLogits, m.logit-m.threshold)
			}
			g.mu.RLock()
			res, err := g.m.Identify(emb[0], 1)
			g.mu.RUnlock()
			if err == nil && enroll.Accepts(res.Ranked[0].Score, oldTh) {
				q.oldRefused++
			}
		}
		// Enrolled whatever the check said: N grows as in an import where
		// every false refusal is forced (the people are all different).
		if err := g.Enroll(name, name, store.Source{Kind: "test"}, []TowerEmbeddings{emb}); err != nil {
			t.Fatal(err)
		}
		enrolled++
	}
	var tot result
	for i, q := range quarters {
		t.Logf("quarter %d: %d checked, %d refused as duplicate (old check: %d)", i+1, q.checked, q.refused, q.oldRefused)
		tot.checked, tot.refused, tot.oldRefused = tot.checked+q.checked, tot.refused+q.refused, tot.oldRefused+q.oldRefused
	}
	rate := float64(tot.refused) / float64(tot.checked)
	t.Logf("false duplicates: %d of %d distinct people (%.2f %%, target %g per request); old check %d (%.1f %%); %d enrolled; %s",
		tot.refused, tot.checked, 100*rate, r.dupRate, tot.oldRefused, 100*float64(tot.oldRefused)/float64(tot.checked), enrolled, time.Since(start).Round(time.Second))
	if tot.checked < 200 {
		t.Fatalf("only %d people checked: want at least 200", tot.checked)
	}
	if tot.refused > 9 {
		t.Errorf("%d false duplicates in %d requests: more than the target rate %g allows", tot.refused, tot.checked, r.dupRate)
	}
	if tot.oldRefused <= tot.refused {
		t.Errorf("the old per-comparison check refused %d, the calibrated one %d: the measurement shows no difference", tot.oldRefused, tot.refused)
	}
	sort.Float64s(bestLogits)
	t.Logf("best other's logit minus threshold: median %.2f, max %.2f", bestLogits[len(bestLogits)/2], bestLogits[len(bestLogits)-1])

	// True duplicates: each person's second photo under a new id.
	caught, tried := 0, 0
	for _, name := range names {
		if len(people[name]) < 2 || !g.Has(name) {
			continue
		}
		emb, ok := embed(people[name][1])
		if !ok {
			continue
		}
		tried++
		c, err := r.check(g, "dup-"+name, mqtt.OpAdd, []TowerEmbeddings{emb})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case c != nil && c.code == mqtt.CodeDuplicate && c.with == name:
			caught++
		case c != nil:
			t.Errorf("%s's second photo refused against someone else: %s", name, c.msg)
		default:
			t.Logf("missed duplicate: %s", people[name][1])
		}
	}
	t.Logf("true duplicates caught: %d of %d (%.1f %%) at N=%d; total %s", caught, tried, 100*float64(caught)/float64(tried), g.Len(), time.Since(start).Round(time.Second))
	if tried < 50 || float64(caught) < 0.9*float64(tried) {
		t.Errorf("caught %d of %d true duplicates: want at least 90 %% of at least 50", caught, tried)
	}
}
