package store

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestUpdateCommitsEverythingTogether(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	k := testKey(t, "k1", 1)
	s := openTest(t, path, k, Options{})
	if err := s.PutAll(person("a", 1), person("b", 2)); err != nil {
		t.Fatal(err)
	}
	err := s.Update(func(b *Batch) error {
		if err := b.Put(person("c", 3)); err != nil {
			return err
		}
		if err := b.AddTemplates("a", Template{Model: facenet, Embedding: embedding(99, 128)}); err != nil {
			return err
		}
		if err := b.Delete("b"); err != nil {
			return err
		}
		if !b.Has("c") || b.Has("b") {
			t.Errorf("batch does not see its own writes: has c %v, has b %v", b.Has("c"), b.Has("b"))
		}
		if err := b.MarkSeen("rq.k.n1", 7); err != nil {
			return err
		}
		return b.SetMark("site", 7)
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, path, k, Options{})
	r := mustCheck(t, s)
	if r.People != 2 || r.Templates != 2+3 {
		t.Fatalf("after commit: %d people, %d templates; want 2, 5", r.People, r.Templates)
	}
	if _, err := s.Get("b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("b still there: %v", err)
	}
	if m, err := s.Mark("site"); err != nil || m != 7 {
		t.Fatalf("mark = %d, %v; want 7", m, err)
	}
	_ = s.Update(func(b *Batch) error {
		if v, ok := b.Seen("rq.k.n1"); !ok || v != 7 {
			t.Errorf("seen = %d, %v; want 7, true", v, ok)
		}
		if _, ok := b.Seen("rq.k.other"); ok {
			t.Error("an id never marked is seen")
		}
		return nil
	})
}

func TestUpdateErrorRollsBackEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	s := openTest(t, path, testKey(t, "k1", 1), Options{})
	if err := s.Put(person("a", 1)); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := s.Update(func(b *Batch) error {
		if err := b.SetMark("site", 3); err != nil {
			return err
		}
		if err := b.MarkSeen("rq.x", 3); err != nil {
			return err
		}
		if err := b.Put(person("z", 1)); err != nil {
			return err
		}
		if err := b.Delete("a"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	if m, _ := s.Mark("site"); m != 0 {
		t.Fatalf("mark %d survived a rollback", m)
	}
	r := mustCheck(t, s)
	if r.People != 1 {
		t.Fatalf("%d people after rollback, want 1", r.People)
	}
	if _, err := s.Get("a"); err != nil {
		t.Fatalf("a lost in a rolled back batch: %v", err)
	}
}

func TestBatchRefusesWhatStoreRefuses(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "g.db"), testKey(t, "k1", 1), Options{})
	err := s.Update(func(b *Batch) error {
		if err := b.AddTemplates("nobody", Template{Model: facenet, Embedding: embedding(1, 128)}); !errors.Is(err, ErrNotFound) {
			t.Errorf("add to absent person: %v, want ErrNotFound", err)
		}
		if err := b.Delete("nobody"); !errors.Is(err, ErrNotFound) {
			t.Errorf("delete absent person: %v, want ErrNotFound", err)
		}
		if err := b.Put(Person{ID: ""}); !errors.Is(err, ErrInvalid) {
			t.Errorf("put without id: %v, want ErrInvalid", err)
		}
		if err := b.SetMark("", 1); !errors.Is(err, ErrInvalid) {
			t.Errorf("empty mark name: %v, want ErrInvalid", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
