package store

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The replication bucket (clear, not sealed: sequence numbers and change
// ids are not personal data):
//
//	sync/mark:<name>   a big-endian uint64 (e.g. the last applied stream sequence)
//	sync/seen:<id>     a big-endian uint64 (the sequence a change id was applied at)
const (
	bucketSync = "sync"
	markPrefix = "mark:"
	seenPrefix = "seen:"
	maxSyncKey = 512
)

// Batch is one write transaction over the gallery, opened by Update: every
// change made through it, and the markers it sets, are committed together
// or not at all (a crash, an error returned by the function). It must not
// be used after the function returns, nor from other goroutines.
type Batch struct {
	s   *Store
	tx  *bolt.Tx
	now time.Time
}

// Update runs fn in one write transaction. When fn returns an error
// nothing it did is stored and that error is returned (wrapped).
func (s *Store) Update(fn func(b *Batch) error) error {
	now := s.now().UTC()
	err := s.db.Update(func(tx *bolt.Tx) error {
		return fn(&Batch{s: s, tx: tx, now: now})
	})
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	return nil
}

// Get returns a person with templates as of this batch (ErrNotFound if
// absent).
func (b *Batch) Get(id string) (Person, error) {
	rec, err := b.s.getRecord(b.tx, id)
	if err != nil {
		return Person{}, err
	}
	return b.s.loadPerson(b.tx, rec)
}

// Has reports whether id is enrolled as of this batch.
func (b *Batch) Has(id string) bool {
	return b.tx.Bucket([]byte(bucketPeople)).Get([]byte(id)) != nil
}

// Put stores p as Store.Put does (replacing p's templates).
func (b *Batch) Put(p Person) error {
	if err := validatePerson(&p); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	return b.s.putTx(b.tx, p, b.now)
}

// AddTemplates appends templates to an enrolled person as
// Store.AddTemplates does (ErrNotFound if absent).
func (b *Batch) AddTemplates(id string, ts ...Template) error {
	if err := validateID(id); err != nil {
		return fmt.Errorf("add templates: %w", err)
	}
	for i := range ts {
		if err := validateTemplate(&ts[i]); err != nil {
			return fmt.Errorf("add templates to %q: template %d: %w", id, i, err)
		}
	}
	rec, err := b.s.getRecord(b.tx, id)
	if err != nil {
		return err
	}
	if rec.NumTemplates+len(ts) > MaxTemplates {
		return fmt.Errorf("%w: person %q would have %d templates, at most %d", ErrInvalid, id, rec.NumTemplates+len(ts), MaxTemplates)
	}
	pb := b.tx.Bucket([]byte(bucketTemplates)).Bucket([]byte(id))
	if pb == nil {
		return fmt.Errorf("person %q: %w: templates bucket missing", id, ErrCorrupt)
	}
	if err := b.s.appendTemplates(pb, id, ts, b.now); err != nil {
		return err
	}
	rec.NumTemplates += len(ts)
	rec.Updated = b.now
	return b.s.putRecord(b.tx, rec)
}

// Delete removes a person and their templates (ErrNotFound if absent).
func (b *Batch) Delete(id string) error {
	people := b.tx.Bucket([]byte(bucketPeople))
	if people.Get([]byte(id)) == nil {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err := people.Delete([]byte(id)); err != nil {
		return err
	}
	tb := b.tx.Bucket([]byte(bucketTemplates))
	if tb.Bucket([]byte(id)) != nil {
		return tb.DeleteBucket([]byte(id))
	}
	return nil
}

func syncKey(prefix, name string) ([]byte, error) {
	if name == "" || len(name) > maxSyncKey {
		return nil, fmt.Errorf("%w: sync key must be 1-%d bytes", ErrInvalid, maxSyncKey)
	}
	return []byte(prefix + name), nil
}

func (b *Batch) syncBucket() (*bolt.Bucket, error) {
	return b.tx.CreateBucketIfNotExists([]byte(bucketSync))
}

// SetMark records v under name (the last applied sequence of a replicated
// log, for instance).
func (b *Batch) SetMark(name string, v uint64) error {
	k, err := syncKey(markPrefix, name)
	if err != nil {
		return err
	}
	sb, err := b.syncBucket()
	if err != nil {
		return err
	}
	return sb.Put(k, binary.BigEndian.AppendUint64(nil, v))
}

// Mark returns the value recorded under name (0 if none).
func (b *Batch) Mark(name string) uint64 { return getUint(b.tx, markPrefix, name) }

// Seen reports whether id was recorded with MarkSeen, and at which value.
func (b *Batch) Seen(id string) (uint64, bool) {
	v := getRaw(b.tx, seenPrefix, id)
	if len(v) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(v), true
}

// MarkSeen records that id (a change id) was applied, at v.
func (b *Batch) MarkSeen(id string, v uint64) error {
	k, err := syncKey(seenPrefix, id)
	if err != nil {
		return err
	}
	sb, err := b.syncBucket()
	if err != nil {
		return err
	}
	return sb.Put(k, binary.BigEndian.AppendUint64(nil, v))
}

func getRaw(tx *bolt.Tx, prefix, name string) []byte {
	sb := tx.Bucket([]byte(bucketSync))
	if sb == nil {
		return nil
	}
	return sb.Get([]byte(prefix + name))
}

func getUint(tx *bolt.Tx, prefix, name string) uint64 {
	if v := getRaw(tx, prefix, name); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// Mark returns the value recorded under name by a committed Batch.SetMark
// (0 if none).
func (s *Store) Mark(name string) (uint64, error) {
	var v uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		v = getUint(tx, markPrefix, name)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("mark %s: %w", name, err)
	}
	return v, nil
}
