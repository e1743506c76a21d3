package store

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Photo records travel with the person: stored by Put, appended by
// AddPhotos in the templates' transaction, returned by Get and gone with
// Delete.
func TestPhotos(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "g.db"), testKey(t, "k", 1), Options{})
	p := person("alice", 1)
	h1, h2 := strings.Repeat("a", 64), strings.Repeat("b", 64)
	p.Photos = []Photo{{SHA256: h1, Verdict: "accepted", Quality: 1, Added: time.Unix(1, 0).UTC()}}
	if err := s.Put(p); err != nil {
		t.Fatal(err)
	}
	if err := s.AddPhotos("alice", []Photo{{SHA256: h2, Verdict: "borderline", Quality: 0.4}}, person("x", 1).Templates...); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get("alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Photos) != 2 || got.Photos[0].SHA256 != h1 || got.Photos[1].Verdict != "borderline" || got.Photos[1].Quality != 0.4 || len(got.Templates) != 2 {
		t.Fatalf("photos %+v, templates %d", got.Photos, len(got.Templates))
	}
	if err := s.AddPhotos("alice", make([]Photo, MaxPhotos), person("x", 1).Templates...); !errors.Is(err, ErrInvalid) {
		t.Fatalf("too many photos: %v", err)
	}
	if err := s.Delete("alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("alice"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}
