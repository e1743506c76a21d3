package daemon

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/facegate/facegate/enroll"
	"github.com/facegate/facegate/enroll/store"
	"github.com/facegate/facegate/infer/manifest"
)

// modelFreeTowers are two towers with cosine scorers and no model: enough
// for the gallery, which stores and matches embeddings.
func modelFreeTowers() []*Tower {
	var towers []*Tower
	for _, name := range []string{"a", "b"} {
		sc := enroll.Scorer{Metric: manifest.MetricCosine, Dim: 8}
		towers = append(towers, &Tower{Store: store.Model{Name: name, Version: "1"}, Scorer: sc})
	}
	return towers
}

func photoRecords(n int, tag string) []store.Photo {
	out := make([]store.Photo, n)
	for i := range out {
		out[i] = store.Photo{SHA256: strings.Repeat(tag, 64), Verdict: "accepted", Quality: 1, Added: time.Unix(int64(i), 0).UTC()}
	}
	return out
}

// Issue 13: a person's templates and the records of the photos they came
// from are written in one transaction. Enroll and AddImages store both;
// a write that fails after the templates were put (too many photo records,
// checked inside the transaction) leaves neither the templates nor the
// records, on disk and in the matchers.
func TestEnrollTemplatesAndPhotosInOneTransaction(t *testing.T) {
	towers := modelFreeTowers()
	g := testGallery(t, towers)
	rng := rand.New(rand.NewPCG(3, 4))
	emb := func() TowerEmbeddings { return TowerEmbeddings{randomUnit(rng, 8), randomUnit(rng, 8)} }
	src := store.Source{Kind: "test"}

	if err := g.Enroll("ada", "Ada", src, []TowerEmbeddings{emb()}, photoRecords(1, "a")...); err != nil {
		t.Fatal(err)
	}
	p, err := g.st.Get("ada")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Templates) != 2 || len(p.Photos) != 1 || p.Photos[0].SHA256 != strings.Repeat("a", 64) {
		t.Fatalf("enrolled: %d templates, photos %+v", len(p.Templates), p.Photos)
	}
	if err := g.AddImages("ada", []TowerEmbeddings{emb()}, photoRecords(1, "b")...); err != nil {
		t.Fatal(err)
	}
	if p, err = g.st.Get("ada"); err != nil {
		t.Fatal(err)
	}
	if len(p.Templates) != 4 || len(p.Photos) != 2 || p.Photos[1].SHA256 != strings.Repeat("b", 64) {
		t.Fatalf("after add_images: %d templates, photos %+v", len(p.Templates), p.Photos)
	}

	// A failure between templates and photo records: AddPhotos appends the
	// templates, then finds the photo records over store.MaxPhotos and
	// fails; the transaction takes the templates back with it.
	err = g.AddImages("ada", []TowerEmbeddings{emb()}, photoRecords(store.MaxPhotos, "c")...)
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("add_images with too many photo records: %v, want store.ErrInvalid", err)
	}
	if p, err = g.st.Get("ada"); err != nil {
		t.Fatal(err)
	}
	if len(p.Templates) != 4 || len(p.Photos) != 2 {
		t.Fatalf("a failed add_images left %d templates (want 4), %d photo records (want 2)", len(p.Templates), len(p.Photos))
	}
	for i := range towers {
		if m, ok := g.towers[i].m.Get("ada"); !ok || len(m.Templates) != 2 {
			t.Fatalf("tower %d matcher after a failed add_images: %+v", i, m)
		}
	}

	// The same for a new person: nothing at all is stored.
	err = g.Enroll("bob", "Bob", src, []TowerEmbeddings{emb()}, photoRecords(store.MaxPhotos+1, "d")...)
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("enroll with too many photo records: %v, want store.ErrInvalid", err)
	}
	if _, err := g.st.Get("bob"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a failed enroll left a record: %v", err)
	}
	if g.Has("bob") {
		t.Fatal("a failed enroll left bob in the matchers")
	}
	// And a replace that fails keeps the person as they were.
	err = g.Replace("ada", "Ada B", src, []TowerEmbeddings{emb()}, photoRecords(store.MaxPhotos+1, "e")...)
	if !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("replace with too many photo records: %v", err)
	}
	if p, err = g.st.Get("ada"); err != nil || p.DisplayName != "Ada" || len(p.Templates) != 4 || len(p.Photos) != 2 {
		t.Fatalf("a failed replace changed ada: %+v, %v", p, err)
	}
}
