package store

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// The gallery file may be tampered with by anyone who can write the state
// directory, so every decoder of stored bytes is fuzzed: the envelope
// parser with decryption, and the template and person decoders that run on
// decrypted plaintext.

// FuzzOpenRecord: arbitrary bytes as a sealed record. Invariants: no panic;
// only the exact sealed seeds decrypt, anything else fails with ErrDecrypt
// or ErrUnknownKey.
func FuzzOpenRecord(f *testing.F) {
	k := testKey(f, "k1", 1)
	ring, _ := newKeyring(k, nil)
	valid := map[string]bool{}
	// Deterministic nonces: the fuzz function also runs in worker processes
	// that rebuild valid on their own.
	for i, p := range []Person{person("alice", 1), person("bob", 2)} {
		for j, tm := range p.Templates {
			nonce := bytes.Repeat([]byte{byte(16*i + j)}, nonceSize)
			sealed := sealWithNonce(k, templateBucketPath(p.ID), seqKey(1), encodeTemplate(tm), nonce)
			valid[string(sealed)] = p.ID == "alice" // only alice's decrypt at alice's path
			f.Add(sealed)
		}
	}
	f.Add([]byte{})
	f.Add([]byte{1, 2, 'k', '1'})
	f.Add([]byte{1, 200, 'k'})
	f.Add([]byte{2, 2, 'k', '1', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		pt, err := ring.open(templateBucketPath("alice"), seqKey(1), data)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("error %v is neither ErrDecrypt nor ErrUnknownKey", err)
			}
			return
		}
		if !valid[string(data)] {
			t.Fatalf("forged record decrypted to %x", pt)
		}
		if _, err := decodeTemplate(pt); err != nil {
			t.Fatalf("sealed template does not decode: %v", err)
		}
	})
}

// FuzzDecodeTemplate: arbitrary plaintext. Invariants: no panic, bounded
// allocation (dimension checked against the payload first), and an accepted
// template re-encodes to exactly the input.
func FuzzDecodeTemplate(f *testing.F) {
	for _, tm := range []Template{
		{Model: facenet, Embedding: embedding(1, 128), Created: t0},
		{Model: Model{Name: "m", Version: ""}, Embedding: []float32{0.5}, Created: time.Unix(0, 0)},
	} {
		f.Add(encodeTemplate(tm))
	}
	f.Add([]byte{1})
	f.Add([]byte{1, 255, 255})
	f.Add([]byte{1, 1, 0, 'm', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, data []byte) {
		tm, err := decodeTemplate(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if again := encodeTemplate(tm); !bytes.Equal(again, data) {
			t.Fatalf("round trip changed the record:\n in %x\nout %x", data, again)
		}
	})
}

// FuzzDecodePerson: arbitrary JSON plaintext of a person record.
func FuzzDecodePerson(f *testing.F) {
	for _, rec := range []personRecord{
		{ID: "alice", DisplayName: "Alice", Created: t0, Updated: t0, Source: Source{Kind: "mqtt", Photos: 3}, NumTemplates: 3},
		{ID: "x"},
	} {
		b, err := encodePerson(rec)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"id":"","num_templates":-1}`))
	f.Add([]byte(`{"id":"a\u0000b"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := decodePerson(data)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if validateID(rec.ID) != nil || rec.NumTemplates < 0 || rec.NumTemplates > MaxTemplates {
			t.Fatalf("accepted invalid record %+v", rec)
		}
	})
}
