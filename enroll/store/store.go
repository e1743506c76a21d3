package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Bucket layout (see docs/security.md):
//
//	meta/schema          "1" (clear)
//	meta/key:<id>        sealed check value, one per key that may seal records
//	people/<id>          sealed JSON person record
//	templates/<id>/<seq> sealed template, seq a big-endian uint64
//	sync/...             replication markers in clear (batch.go)
const (
	bucketMeta      = "meta"
	bucketPeople    = "people"
	bucketTemplates = "templates"
	schemaKey       = "schema"
	schemaVersion   = 1
	keyCheckPrefix  = "key:"
	// DefaultLockTimeout is how long Open waits for another process to
	// release the database file.
	DefaultLockTimeout = 2 * time.Second
)

// Errors, tested with errors.Is.
var (
	ErrNotFound = errors.New("store: person not found")
	ErrLocked   = errors.New("store: gallery is in use by another process")
	ErrSchema   = errors.New("store: unsupported gallery schema")
)

func keyCheckName(id string) []byte { return []byte(keyCheckPrefix + id) }

// Options configure Open; the zero value is valid.
type Options struct {
	// OldKeys may still decrypt records sealed before a key rotation; new
	// records are always sealed with the current key. See Rekey.
	OldKeys []Key
	// ReadOnly opens the file with a shared lock and refuses mutations.
	ReadOnly bool
	// LockTimeout bounds the wait for the file lock (default 2 s).
	LockTimeout time.Duration
	// Now is the clock for Created/Updated (default time.Now).
	Now func() time.Time
	// Logger receives open/rekey events (default: discard).
	Logger *slog.Logger
}

// Store is an open gallery. Its methods are safe for concurrent use; each
// mutation is one transaction.
type Store struct {
	db     *bolt.DB
	keys   *keyring
	now    func() time.Time
	logger *slog.Logger
	path   string
}

// Open opens or creates the gallery database at path with the current key.
// The parent directory is created with mode 0700 and the file with 0600; an
// existing file readable by others is tightened to 0600 (logged). Open fails
// with ErrWrongKey when key's id is known to the gallery with another secret,
// with ErrUnknownKey when the gallery holds records under a key id that is
// neither key nor in opts.OldKeys, and with ErrLocked when another process
// holds the file.
func Open(path string, key Key, opts Options) (*Store, error) {
	keys, err := newKeyring(key, opts.OldKeys)
	if err != nil {
		return nil, fmt.Errorf("open gallery %s: %w", path, err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	logger := opts.Logger.With("component", "gallery", "path", path)
	if !opts.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("open gallery: %w", err)
		}
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 && !opts.ReadOnly {
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, fmt.Errorf("open gallery: tighten mode of %s: %w", path, err)
		}
		logger.Warn("gallery file was accessible to group or others; mode set to 0600", "old_mode", fmt.Sprintf("%04o", st.Mode().Perm()))
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, ReadOnly: opts.ReadOnly})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("open gallery %s: %w (waited %s)", path, ErrLocked, opts.LockTimeout)
		}
		return nil, fmt.Errorf("open gallery %s: %w", path, err)
	}
	s := &Store{db: db, keys: keys, now: opts.Now, logger: logger, path: path}
	if opts.ReadOnly {
		err = db.View(s.checkKeys)
	} else {
		err = db.Update(s.init)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open gallery %s: %w", path, err)
	}
	logger.Debug("gallery opened", "key", key.ID, "read_only", opts.ReadOnly)
	return s, nil
}

// init creates the buckets and the current key's check record, then checks
// the keys.
func (s *Store) init(tx *bolt.Tx) error {
	for _, name := range []string{bucketMeta, bucketPeople, bucketTemplates} {
		if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket([]byte(bucketMeta))
	if meta.Get([]byte(schemaKey)) == nil {
		if err := meta.Put([]byte(schemaKey), []byte(strconv.Itoa(schemaVersion))); err != nil {
			return err
		}
	}
	name := keyCheckName(s.keys.current.ID)
	if meta.Get(name) == nil {
		sealed, err := seal(s.keys.current, bucketMeta, name, keyCheckPlaintext)
		if err != nil {
			return err
		}
		if err := meta.Put(name, sealed); err != nil {
			return err
		}
	}
	return s.checkKeys(tx)
}

// checkKeys verifies the schema and that every key the gallery may use is
// provided with the right secret.
func (s *Store) checkKeys(tx *bolt.Tx) error {
	meta := tx.Bucket([]byte(bucketMeta))
	if meta == nil || tx.Bucket([]byte(bucketPeople)) == nil || tx.Bucket([]byte(bucketTemplates)) == nil {
		return fmt.Errorf("%w: missing buckets (not a facegate gallery?)", ErrCorrupt)
	}
	if v := string(meta.Get([]byte(schemaKey))); v != strconv.Itoa(schemaVersion) {
		return fmt.Errorf("%w %q (this build reads %d)", ErrSchema, v, schemaVersion)
	}
	c := meta.Cursor()
	prefix := []byte(keyCheckPrefix)
	for k, v := c.Seek(prefix); k != nil && len(k) >= len(prefix) && string(k[:len(prefix)]) == keyCheckPrefix; k, v = c.Next() {
		id := string(k[len(prefix):])
		key, ok := s.keys.byID[id]
		if !ok {
			return fmt.Errorf("%w: %q (pass it as an old key, or restore it)", ErrUnknownKey, id)
		}
		if err := checkKey(key, v); err != nil {
			return err
		}
	}
	return nil
}

// Path returns the database file path.
func (s *Store) Path() string { return s.path }

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close gallery %s: %w", s.path, err)
	}
	return nil
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func templateBucketPath(id string) string { return bucketTemplates + "/" + id }

// Put stores p completely: its metadata and exactly p.Templates, replacing
// any earlier templates of p.ID, in one transaction. Created is kept from
// the existing record (or p.Created, or now); Updated is set to now.
func (s *Store) Put(p Person) error {
	return s.PutAll(p)
}

// PutAll stores several people as Put does, all in one transaction: either
// all are stored or none.
func (s *Store) PutAll(people ...Person) error {
	for i := range people {
		if err := validatePerson(&people[i]); err != nil {
			return fmt.Errorf("put: %w", err)
		}
	}
	now := s.now().UTC()
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, p := range people {
			if err := s.putTx(tx, p, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put: %w", err)
	}
	return nil
}

func (s *Store) putTx(tx *bolt.Tx, p Person, now time.Time) error {
	rec := personRecord{ID: p.ID, DisplayName: p.DisplayName, Created: p.Created.UTC(), Updated: now, Source: p.Source, Photos: p.Photos}
	if old, err := s.getRecord(tx, p.ID); err == nil {
		rec.Created = old.Created
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	if rec.Created.IsZero() {
		rec.Created = now
	}
	tb := tx.Bucket([]byte(bucketTemplates))
	if tb.Bucket([]byte(p.ID)) != nil {
		if err := tb.DeleteBucket([]byte(p.ID)); err != nil {
			return fmt.Errorf("person %q: drop templates: %w", p.ID, err)
		}
	}
	pb, err := tb.CreateBucket([]byte(p.ID))
	if err != nil {
		return fmt.Errorf("person %q: templates bucket: %w", p.ID, err)
	}
	if err := s.appendTemplates(pb, p.ID, p.Templates, now); err != nil {
		return err
	}
	rec.NumTemplates = len(p.Templates)
	return s.putRecord(tx, rec)
}

func (s *Store) appendTemplates(b *bolt.Bucket, id string, ts []Template, now time.Time) error {
	for _, t := range ts {
		if t.Created.IsZero() {
			t.Created = now
		}
		seq, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("person %q: template sequence: %w", id, err)
		}
		k := seqKey(seq)
		sealed, err := seal(s.keys.current, templateBucketPath(id), k, encodeTemplate(t))
		if err != nil {
			return err
		}
		if err := b.Put(k, sealed); err != nil {
			return fmt.Errorf("person %q: put template: %w", id, err)
		}
	}
	return nil
}

func (s *Store) putRecord(tx *bolt.Tx, rec personRecord) error {
	plain, err := encodePerson(rec)
	if err != nil {
		return err
	}
	sealed, err := seal(s.keys.current, bucketPeople, []byte(rec.ID), plain)
	if err != nil {
		return err
	}
	if err := tx.Bucket([]byte(bucketPeople)).Put([]byte(rec.ID), sealed); err != nil {
		return fmt.Errorf("person %q: put: %w", rec.ID, err)
	}
	return nil
}

func (s *Store) getRecord(tx *bolt.Tx, id string) (personRecord, error) {
	v := tx.Bucket([]byte(bucketPeople)).Get([]byte(id))
	if v == nil {
		return personRecord{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return s.openRecord(id, v)
}

func (s *Store) openRecord(id string, sealed []byte) (personRecord, error) {
	plain, err := s.keys.open(bucketPeople, []byte(id), sealed)
	if err != nil {
		return personRecord{}, fmt.Errorf("person %q: %w", id, err)
	}
	rec, err := decodePerson(plain)
	if err != nil {
		return personRecord{}, fmt.Errorf("person %q: %w", id, err)
	}
	if rec.ID != id {
		return personRecord{}, fmt.Errorf("person %q: %w: record names %q", id, ErrCorrupt, rec.ID)
	}
	return rec, nil
}

// AddTemplates appends templates to an enrolled person (ErrNotFound if
// absent) and updates the person's count and Updated time, in one
// transaction.
func (s *Store) AddTemplates(id string, ts ...Template) error {
	return s.AddPhotos(id, nil, ts...)
}

// AddPhotos is AddTemplates that also records the photos the templates
// came from, in the same transaction.
func (s *Store) AddPhotos(id string, photos []Photo, ts ...Template) error {
	if err := validateID(id); err != nil {
		return fmt.Errorf("add templates: %w", err)
	}
	for i := range ts {
		if err := validateTemplate(&ts[i]); err != nil {
			return fmt.Errorf("add templates to %q: template %d: %w", id, i, err)
		}
	}
	now := s.now().UTC()
	err := s.db.Update(func(tx *bolt.Tx) error {
		rec, err := s.getRecord(tx, id)
		if err != nil {
			return err
		}
		if rec.NumTemplates+len(ts) > MaxTemplates {
			return fmt.Errorf("%w: person %q would have %d templates, at most %d", ErrInvalid, id, rec.NumTemplates+len(ts), MaxTemplates)
		}
		pb := tx.Bucket([]byte(bucketTemplates)).Bucket([]byte(id))
		if pb == nil {
			return fmt.Errorf("person %q: %w: templates bucket missing", id, ErrCorrupt)
		}
		if err := s.appendTemplates(pb, id, ts, now); err != nil {
			return err
		}
		if len(rec.Photos)+len(photos) > MaxPhotos {
			return fmt.Errorf("%w: person %q would have %d photos, at most %d", ErrInvalid, id, len(rec.Photos)+len(photos), MaxPhotos)
		}
		rec.Photos = append(rec.Photos, photos...)
		rec.NumTemplates += len(ts)
		rec.Updated = now
		return s.putRecord(tx, rec)
	})
	if err != nil {
		return fmt.Errorf("add templates: %w", err)
	}
	return nil
}

// Delete removes a person and all their templates in one transaction
// (ErrNotFound if absent). bbolt frees the pages, but freed pages may keep
// old ciphertext until reused: encryption protects them, and Rekey followed
// by destroying the old key makes them unreadable (docs/security.md).
func (s *Store) Delete(id string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		people := tx.Bucket([]byte(bucketPeople))
		if people.Get([]byte(id)) == nil {
			return fmt.Errorf("%w: %q", ErrNotFound, id)
		}
		if err := people.Delete([]byte(id)); err != nil {
			return err
		}
		tb := tx.Bucket([]byte(bucketTemplates))
		if tb.Bucket([]byte(id)) != nil {
			if err := tb.DeleteBucket([]byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	return nil
}

// Get returns a person with their templates decrypted.
func (s *Store) Get(id string) (Person, error) {
	var p Person
	err := s.db.View(func(tx *bolt.Tx) error {
		rec, err := s.getRecord(tx, id)
		if err != nil {
			return err
		}
		p, err = s.loadPerson(tx, rec)
		return err
	})
	if err != nil {
		return Person{}, fmt.Errorf("get: %w", err)
	}
	return p, nil
}

func (s *Store) loadPerson(tx *bolt.Tx, rec personRecord) (Person, error) {
	p := personFromRecord(rec)
	pb := tx.Bucket([]byte(bucketTemplates)).Bucket([]byte(rec.ID))
	if pb == nil {
		return Person{}, fmt.Errorf("person %q: %w: templates bucket missing", rec.ID, ErrCorrupt)
	}
	p.Templates = make([]Template, 0, rec.NumTemplates)
	path := templateBucketPath(rec.ID)
	err := pb.ForEach(func(k, v []byte) error {
		plain, err := s.keys.open(path, k, v)
		if err != nil {
			return fmt.Errorf("person %q template %x: %w", rec.ID, k, err)
		}
		t, err := decodeTemplate(plain)
		if err != nil {
			return fmt.Errorf("person %q template %x: %w", rec.ID, k, err)
		}
		p.Templates = append(p.Templates, t)
		return nil
	})
	if err != nil {
		return Person{}, err
	}
	if len(p.Templates) != rec.NumTemplates {
		return Person{}, fmt.Errorf("person %q: %w: %d templates stored, record says %d", rec.ID, ErrCorrupt, len(p.Templates), rec.NumTemplates)
	}
	return p, nil
}

func personFromRecord(rec personRecord) Person {
	return Person{
		ID: rec.ID, DisplayName: rec.DisplayName, Created: rec.Created, Updated: rec.Updated,
		Source: rec.Source, NumTemplates: rec.NumTemplates, Photos: rec.Photos,
	}
}

// List returns every person without templates (NumTemplates is set), in id
// order.
func (s *Store) List() ([]Person, error) {
	var out []Person
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketPeople)).ForEach(func(k, v []byte) error {
			rec, err := s.openRecord(string(k), v)
			if err != nil {
				return err
			}
			out = append(out, personFromRecord(rec))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	return out, nil
}

// Len returns the number of people.
func (s *Store) Len() (int, error) {
	var n int
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket([]byte(bucketPeople)).Stats().KeyN
		return nil
	})
	return n, err
}

// ForEach calls fn for every person, with templates, in id order, from one
// consistent snapshot; it stops at fn's first error and returns it. fn must
// not mutate the store (it runs inside a read transaction).
func (s *Store) ForEach(fn func(Person) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketPeople)).ForEach(func(k, v []byte) error {
			rec, err := s.openRecord(string(k), v)
			if err != nil {
				return err
			}
			p, err := s.loadPerson(tx, rec)
			if err != nil {
				return err
			}
			return fn(p)
		})
	})
}

// Models counts templates per model, so the daemon can detect templates
// left from a model that is no longer loaded (they must be re-enrolled).
func (s *Store) Models() (map[Model]int, error) {
	counts := map[Model]int{}
	err := s.ForEach(func(p Person) error {
		for _, t := range p.Templates {
			counts[t.Model]++
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("models: %w", err)
	}
	return counts, nil
}
