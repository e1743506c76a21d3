package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func testKey(t testing.TB, id string, fill byte) Key {
	t.Helper()
	k, err := NewKey(id, bytes.Repeat([]byte{fill}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(t0.UnixNano())
	return c
}
func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }

var facenet = Model{Name: "facenet", Version: "1.0.0"}

func embedding(seed, dim int) []float32 {
	e := make([]float32, dim)
	for i := range e {
		e[i] = float32(math.Sin(float64(seed*1000+i))) / 8
	}
	return e
}

func person(id string, n int) Person {
	p := Person{ID: id, DisplayName: "Person " + id, Source: Source{Kind: "mqtt", KeyID: "door-1", RequestID: "r-" + id, Photos: n}}
	for i := 0; i < n; i++ {
		p.Templates = append(p.Templates, Template{Model: facenet, Embedding: embedding(len(id)*10+i, 128)})
	}
	return p
}

func openTest(t testing.TB, path string, k Key, opts Options) *Store {
	t.Helper()
	s, err := Open(path, k, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustCheck(t testing.TB, s *Store) Report {
	t.Helper()
	r, err := s.Check()
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return r
}

func TestPutGet(t *testing.T) {
	c := newClock()
	s := openTest(t, filepath.Join(t.TempDir(), "gallery.db"), testKey(t, "k1", 1), Options{Now: c.now})
	alice := person("alice", 3)
	alice.Templates[1].Model = Model{Name: "vggface2", Version: "2"}
	if err := s.Put(alice); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get("alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.DisplayName != alice.DisplayName || got.Source != alice.Source || got.NumTemplates != 3 {
		t.Errorf("metadata = %+v", got)
	}
	if !got.Created.Equal(t0) || !got.Updated.Equal(t0) {
		t.Errorf("times = %s, %s; want %s", got.Created, got.Updated, t0)
	}
	if len(got.Templates) != 3 {
		t.Fatalf("%d templates", len(got.Templates))
	}
	for i, tm := range got.Templates {
		if tm.Model != alice.Templates[i].Model || !reflect.DeepEqual(tm.Embedding, alice.Templates[i].Embedding) || !tm.Created.Equal(t0) {
			t.Errorf("template %d = %v %v, want %v", i, tm.Model, tm.Created, alice.Templates[i].Model)
		}
	}

	// Put replaces templates and keeps Created.
	c.add(time.Hour)
	alice2 := person("alice", 1)
	alice2.DisplayName = "Alice B."
	if err := s.Put(alice2); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Get("alice")
	if got.NumTemplates != 1 || len(got.Templates) != 1 || got.DisplayName != "Alice B." {
		t.Errorf("after replace: %d templates, name %q", len(got.Templates), got.DisplayName)
	}
	if !got.Created.Equal(t0) || !got.Updated.Equal(t0.Add(time.Hour)) {
		t.Errorf("after replace: created %s updated %s", got.Created, got.Updated)
	}
	if _, err := s.Get("bob"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(bob) = %v, want ErrNotFound", err)
	}
}

func TestAddTemplatesAndDelete(t *testing.T) {
	c := newClock()
	s := openTest(t, filepath.Join(t.TempDir(), "g.db"), testKey(t, "k1", 1), Options{Now: c.now})
	if err := s.AddTemplates("bob", person("bob", 1).Templates...); !errors.Is(err, ErrNotFound) {
		t.Fatalf("AddTemplates to unknown = %v, want ErrNotFound", err)
	}
	if err := s.PutAll(person("bob", 2), person("carol", 1)); err != nil {
		t.Fatal(err)
	}
	c.add(time.Minute)
	extra := person("bobby", 2).Templates
	if err := s.AddTemplates("bob", extra...); err != nil {
		t.Fatal(err)
	}
	bob, _ := s.Get("bob")
	if bob.NumTemplates != 4 || len(bob.Templates) != 4 || !bob.Updated.Equal(t0.Add(time.Minute)) {
		t.Fatalf("bob: %d/%d templates, updated %s", bob.NumTemplates, len(bob.Templates), bob.Updated)
	}
	if !reflect.DeepEqual(bob.Templates[3].Embedding, extra[1].Embedding) {
		t.Error("appended templates out of order")
	}
	tooMany := make([]Template, MaxTemplates)
	for i := range tooMany {
		tooMany[i] = extra[0]
	}
	if err := s.AddTemplates("bob", tooMany...); !errors.Is(err, ErrInvalid) {
		t.Errorf("exceeding MaxTemplates = %v", err)
	}
	if bob, _ := s.Get("bob"); bob.NumTemplates != 4 {
		t.Errorf("failed AddTemplates changed bob: %d", bob.NumTemplates)
	}

	if err := s.Delete("bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("bob"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Delete = %v", err)
	}
	if err := s.Delete("bob"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete = %v", err)
	}
	r := mustCheck(t, s)
	if r.People != 1 || r.Templates != 1 {
		t.Errorf("report %+v, want 1 person, 1 template", r)
	}
	_ = s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte(bucketTemplates)).Bucket([]byte("bob")) != nil {
			t.Error("bob's templates bucket survived Delete")
		}
		return nil
	})
}

func TestListForEachModels(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "g.db"), testKey(t, "k1", 1), Options{})
	old := person("zed", 2)
	old.Templates[0].Model = Model{Name: "facenet", Version: "0.9"}
	if err := s.PutAll(person("bob", 1), old, person("amy", 3)); err != nil {
		t.Fatal(err)
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range list {
		ids = append(ids, fmt.Sprintf("%s:%d:%d", p.ID, p.NumTemplates, len(p.Templates)))
	}
	if got := strings.Join(ids, " "); got != "amy:3:0 bob:1:0 zed:2:0" {
		t.Errorf("List = %s", got)
	}
	n := 0
	if err := s.ForEach(func(p Person) error { n += len(p.Templates); return nil }); err != nil || n != 6 {
		t.Errorf("ForEach saw %d templates, err %v", n, err)
	}
	stop := errors.New("stop")
	if err := s.ForEach(func(Person) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("ForEach error = %v", err)
	}
	if l, err := s.Len(); l != 3 || err != nil {
		t.Errorf("Len = %d, %v", l, err)
	}
	m, err := s.Models()
	if err != nil {
		t.Fatal(err)
	}
	want := map[Model]int{facenet: 5, {Name: "facenet", Version: "0.9"}: 1}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("Models = %v, want %v", m, want)
	}
}

func TestValidation(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "g.db"), testKey(t, "k1", 1), Options{})
	nan := person("x", 1)
	nan.Templates[0].Embedding[5] = float32(math.NaN())
	inf := person("x", 1)
	inf.Templates[0].Embedding[0] = float32(math.Inf(-1))
	tests := []struct {
		name string
		p    Person
	}{
		{"empty id", person("", 1)},
		{"control id", person("a\x00b", 1)},
		{"newline id", person("a\nb", 1)},
		{"invalid utf8 id", person("a\xffb", 1)},
		{"long id", person(strings.Repeat("i", MaxIDLen+1), 1)},
		{"long name", Person{ID: "x", DisplayName: strings.Repeat("n", MaxNameLen+1)}},
		{"nan", nan},
		{"inf", inf},
		{"empty embedding", Person{ID: "x", Templates: []Template{{Model: facenet}}}},
		{"huge embedding", Person{ID: "x", Templates: []Template{{Model: facenet, Embedding: make([]float32, MaxDim+1)}}}},
		{"no model", Person{ID: "x", Templates: []Template{{Embedding: []float32{1}}}}},
		{"too many", person("x", MaxTemplates+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Put(tt.p); !errors.Is(err, ErrInvalid) {
				t.Errorf("Put = %v, want ErrInvalid", err)
			}
			// PutAll is all or nothing.
			if err := s.PutAll(person("ok", 1), tt.p); !errors.Is(err, ErrInvalid) {
				t.Errorf("PutAll = %v, want ErrInvalid", err)
			}
			if n, _ := s.Len(); n != 0 {
				t.Errorf("%d people stored after failed writes", n)
			}
		})
	}
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "facegate")
	path := filepath.Join(dir, "gallery.db")
	s := openTest(t, path, testKey(t, "k1", 1), Options{})
	if err := s.Put(person("a", 1)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("%s mode %04o, want %04o", p, got, want)
		}
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s2 := openTest(t, path, testKey(t, "k1", 1), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	s2.Close()
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode not tightened: %04o", st.Mode().Perm())
	}
	if !strings.Contains(logs.String(), "0600") {
		t.Errorf("tightening not logged: %s", logs.String())
	}
}

func TestKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	k1 := testKey(t, "k1", 1)
	s := openTest(t, path, k1, Options{})
	if err := s.Put(person("alice", 2)); err != nil {
		t.Fatal(err)
	}
	s.Close()

	tests := []struct {
		name string
		key  Key
		opts Options
		want error
	}{
		{"right key", k1, Options{}, nil},
		{"right key read-only", k1, Options{ReadOnly: true}, nil},
		{"wrong secret", testKey(t, "k1", 2), Options{}, ErrWrongKey},
		{"wrong secret read-only", testKey(t, "k1", 2), Options{ReadOnly: true}, ErrWrongKey},
		{"other key only", testKey(t, "k2", 2), Options{}, ErrUnknownKey},
		{"wrong old key", testKey(t, "k2", 2), Options{OldKeys: []Key{testKey(t, "k1", 3)}}, ErrWrongKey},
		{"rotation", testKey(t, "k2", 2), Options{OldKeys: []Key{k1}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(path, tt.key, tt.opts)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("Open = %v, want %v", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer s.Close()
			if p, err := s.Get("alice"); err != nil || len(p.Templates) != 2 {
				t.Errorf("Get: %v", err)
			}
		})
	}
	if _, err := Open(path, Key{ID: "k1"}, Options{}); err == nil {
		t.Error("Open with a zero Key succeeded")
	}
}

func TestKeyRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	k1, k2 := testKey(t, "k1", 1), testKey(t, "k2", 2)
	s := openTest(t, path, k1, Options{})
	if err := s.PutAll(person("alice", 2), person("bob", 1)); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openTest(t, path, k2, Options{OldKeys: []Key{k1}})
	if err := s.Put(person("carol", 1)); err != nil {
		t.Fatal(err)
	}
	r := mustCheck(t, s)
	if r.KeyIDs["k1"] != 5 || r.KeyIDs["k2"] != 2 {
		t.Errorf("before rekey, records per key = %v", r.KeyIDs)
	}
	n, err := s.Rekey()
	if err != nil || n != 7 {
		t.Fatalf("Rekey = %d, %v; want 7 records", n, err)
	}
	if r := mustCheck(t, s); r.KeyIDs["k1"] != 0 || r.KeyIDs["k2"] != 7 {
		t.Errorf("after rekey, records per key = %v", r.KeyIDs)
	}
	s.Close()

	s = openTest(t, path, k2, Options{})
	if r := mustCheck(t, s); r.People != 3 || r.Templates != 4 {
		t.Errorf("after rekey: %+v", r)
	}
	s.Close()
	if _, err := Open(path, k1, Options{}); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Open with retired key = %v, want ErrUnknownKey", err)
	}
}

// rawUpdate edits the closed database file directly, as an attacker with
// write access to the state directory could.
func rawUpdate(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func TestCiphertextBoundToRecord(t *testing.T) {
	k := testKey(t, "k1", 1)
	tests := []struct {
		name   string
		victim string
		edit   func(tx *bolt.Tx) error
	}{
		{"person record swapped", "bob", func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte(bucketPeople))
			return b.Put([]byte("bob"), append([]byte(nil), b.Get([]byte("alice"))...))
		}},
		{"template moved between people", "bob", func(tx *bolt.Tx) error {
			tb := tx.Bucket([]byte(bucketTemplates))
			v := append([]byte(nil), tb.Bucket([]byte("alice")).Get(seqKey(1))...)
			return tb.Bucket([]byte("bob")).Put(seqKey(1), v)
		}},
		{"template reordered", "alice", func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte(bucketTemplates)).Bucket([]byte("alice"))
			v1 := append([]byte(nil), b.Get(seqKey(1))...)
			v2 := append([]byte(nil), b.Get(seqKey(2))...)
			if err := b.Put(seqKey(1), v2); err != nil {
				return err
			}
			return b.Put(seqKey(2), v1)
		}},
		{"bit flipped", "alice", func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte(bucketPeople))
			v := append([]byte(nil), b.Get([]byte("alice"))...)
			v[len(v)-1] ^= 1
			return b.Put([]byte("alice"), v)
		}},
		{"truncated", "alice", func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte(bucketPeople))
			return b.Put([]byte("alice"), append([]byte(nil), b.Get([]byte("alice"))[:10]...))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "g.db")
			s := openTest(t, path, k, Options{})
			if err := s.PutAll(person("alice", 2), person("bob", 2)); err != nil {
				t.Fatal(err)
			}
			s.Close()
			rawUpdate(t, path, tt.edit)
			s = openTest(t, path, k, Options{})
			if _, err := s.Get(tt.victim); !errors.Is(err, ErrDecrypt) {
				t.Errorf("Get(%s) = %v, want ErrDecrypt", tt.victim, err)
			}
			if _, err := s.Check(); !errors.Is(err, ErrDecrypt) {
				t.Errorf("Check = %v, want ErrDecrypt", err)
			}
		})
	}
}

func TestCheckFindsInconsistencies(t *testing.T) {
	k := testKey(t, "k1", 1)
	tests := []struct {
		name string
		edit func(tx *bolt.Tx) error
	}{
		{"template deleted", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte(bucketTemplates)).Bucket([]byte("alice")).Delete(seqKey(2))
		}},
		{"orphan templates", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte(bucketPeople)).Delete([]byte("alice"))
		}},
		{"templates bucket missing", func(tx *bolt.Tx) error {
			return tx.Bucket([]byte(bucketTemplates)).DeleteBucket([]byte("alice"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "g.db")
			s := openTest(t, path, k, Options{})
			if err := s.Put(person("alice", 2)); err != nil {
				t.Fatal(err)
			}
			s.Close()
			rawUpdate(t, path, tt.edit)
			s = openTest(t, path, k, Options{})
			if _, err := s.Check(); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Check = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestNoPlaintextOnDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	s := openTest(t, path, testKey(t, "k1", 1), Options{})
	p := person("emp-4711", 2)
	p.DisplayName = "Zelda Quixotic-Fairweather"
	p.Source.Note = "badge photo import"
	if err := s.Put(p); err != nil {
		t.Fatal(err)
	}
	s.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, needle := range [][]byte{[]byte(p.DisplayName), []byte(p.Source.Note), []byte("facenet"), floatBytes(p.Templates[0].Embedding[:4])} {
		if bytes.Contains(raw, needle) {
			t.Errorf("database file contains plaintext %q", needle)
		}
	}
	if !bytes.Contains(raw, []byte("emp-4711")) {
		t.Error("expected the person id in clear (it is the bbolt key); update docs/security.md if that changed")
	}
}

func floatBytes(v []float32) []byte {
	var b []byte
	for _, f := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return b
}

func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	k := testKey(t, "k1", 1)
	openTest(t, path, k, Options{})
	start := time.Now()
	if _, err := Open(path, k, Options{LockTimeout: 100 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("lock wait took %s", time.Since(start))
	}
}

func TestNewKey(t *testing.T) {
	if _, err := NewKey("k1", make([]byte, 31)); err == nil {
		t.Error("31-byte secret accepted")
	}
	if _, err := NewKey("k 1", make([]byte, 32)); err == nil {
		t.Error("bad id accepted")
	}
	sec := bytes.Repeat([]byte{0x7e}, 40)
	k, err := NewKey("k1", sec)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	type hidden struct{ k Key }
	for _, v := range []any{k, &k, hidden{k}, []Key{k}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%d"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
	}
	slog.New(slog.NewJSONHandler(&out, nil)).Info("k", "key", k)
	slog.New(slog.NewTextHandler(&out, nil)).Info("k", "key", k, "hidden", hidden{k})
	if bytes.Contains(out.Bytes(), sec[:8]) || strings.Contains(out.String(), "126 126 126") || strings.Contains(out.String(), "7e7e7e") {
		t.Errorf("key material printed:\n%s", out.String())
	}
}
