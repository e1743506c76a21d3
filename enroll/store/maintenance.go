package store

import (
	"errors"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Report summarises a consistency check.
type Report struct {
	People    int
	Templates int
	Models    map[Model]int
	KeyIDs    map[string]int // records per sealing key id
}

// Check verifies the whole gallery in one read transaction: bbolt's page
// structure, every person and template decrypts and decodes, template counts
// match the person records, and no templates exist without a person. It
// returns a summary, or an error wrapping ErrCorrupt (or ErrDecrypt,
// ErrUnknownKey) that names the first problem found.
func (s *Store) Check() (Report, error) {
	r := Report{Models: map[Model]int{}, KeyIDs: map[string]int{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			return fmt.Errorf("%w: bbolt check: %w", ErrCorrupt, errors.Join(errs...))
		}
		if err := s.checkKeys(tx); err != nil {
			return err
		}
		people := tx.Bucket([]byte(bucketPeople))
		countKey := func(sealed []byte) {
			if env, err := parseEnvelope(sealed); err == nil {
				r.KeyIDs[env.keyID]++
			}
		}
		err := people.ForEach(func(k, v []byte) error {
			countKey(v)
			rec, err := s.openRecord(string(k), v)
			if err != nil {
				return err
			}
			p, err := s.loadPerson(tx, rec)
			if err != nil {
				return err
			}
			r.People++
			r.Templates += len(p.Templates)
			for _, t := range p.Templates {
				r.Models[t.Model]++
			}
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket([]byte(bucketTemplates)).ForEach(func(k, v []byte) error {
			if v != nil {
				return fmt.Errorf("%w: stray value %q in templates bucket", ErrCorrupt, k)
			}
			if people.Get(k) == nil {
				return fmt.Errorf("%w: templates for %q without a person record", ErrCorrupt, k)
			}
			return tx.Bucket([]byte(bucketTemplates)).Bucket(k).ForEach(func(_, v []byte) error {
				countKey(v)
				return nil
			})
		})
	})
	if err != nil {
		return r, fmt.Errorf("check gallery %s: %w", s.path, err)
	}
	return r, nil
}

// Rekey re-encrypts every record with the current key in one transaction
// and forgets the other keys' check records, so later Opens no longer need
// the old keys. It returns the number of records rewritten. After Rekey, the
// old key can be destroyed; freed pages holding old ciphertext then become
// unreadable.
func (s *Store) Rekey() (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		reseal := func(b *bolt.Bucket, path string) error {
			type kv struct{ k, v []byte }
			var out []kv
			err := b.ForEach(func(k, v []byte) error {
				if v == nil {
					return nil // nested bucket
				}
				plain, err := s.keys.open(path, k, v)
				if err != nil {
					return fmt.Errorf("%s/%x: %w", path, k, err)
				}
				sealed, err := seal(s.keys.current, path, k, plain)
				if err != nil {
					return err
				}
				out = append(out, kv{append([]byte(nil), k...), sealed})
				return nil
			})
			if err != nil {
				return err
			}
			for _, e := range out {
				if err := b.Put(e.k, e.v); err != nil {
					return err
				}
			}
			n += len(out)
			return nil
		}
		if err := reseal(tx.Bucket([]byte(bucketPeople)), bucketPeople); err != nil {
			return err
		}
		tb := tx.Bucket([]byte(bucketTemplates))
		var ids [][]byte
		if err := tb.ForEach(func(k, _ []byte) error { ids = append(ids, append([]byte(nil), k...)); return nil }); err != nil {
			return err
		}
		for _, id := range ids {
			if err := reseal(tb.Bucket(id), templateBucketPath(string(id))); err != nil {
				return err
			}
		}
		meta := tx.Bucket([]byte(bucketMeta))
		var stale [][]byte
		err := meta.ForEach(func(k, _ []byte) error {
			if strings.HasPrefix(string(k), keyCheckPrefix) && string(k) != string(keyCheckName(s.keys.current.ID)) {
				stale = append(stale, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range stale {
			if err := meta.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("rekey gallery %s: %w", s.path, err)
	}
	s.logger.Info("gallery re-encrypted", "key", s.keys.current.ID, "records", n)
	return n, nil
}
