package store

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
)

const (
	// MinSecretLen is the minimum length of a key's secret.
	MinSecretLen = 32
	// envelopeVersion is the first byte of every sealed record.
	envelopeVersion = 1
	nonceSize       = 12
	hkdfInfo        = "facegate/store/aes-256-gcm/v1"
	adPrefix        = "facegate/store/v1"
	redacted        = "[REDACTED]"
)

// Encryption errors, tested with errors.Is.
var (
	// ErrWrongKey: the key's id is known to the gallery but its secret is
	// not the one the gallery was written with.
	ErrWrongKey = errors.New("store: wrong key for this gallery")
	// ErrUnknownKey: records are sealed under a key id that was not given.
	ErrUnknownKey = errors.New("store: gallery uses a key that was not provided")
	// ErrDecrypt: a record failed authentication (tampered, truncated,
	// moved to another record, or sealed under a different secret).
	ErrDecrypt = errors.New("store: record failed authentication")
)

// Key is a named gallery encryption key. The AES-256 key is derived from
// the secret with HKDF-SHA256, so the same secret used elsewhere (for
// example as an HMAC key) yields an unrelated AES key. Key's String,
// GoString, Format and LogValue never reveal key material.
type Key struct {
	ID   string
	aead func() cipher.AEAD // a closure: printed as an address, never dereferenced
}

// NewKey derives a gallery key from secret (at least 32 bytes; random, for
// example from `head -c32 /dev/urandom | base64`). The id is 1-64 of
// [A-Za-z0-9._-] and is stored beside every record it seals.
func NewKey(id string, secret []byte) (Key, error) {
	if !validKeyID(id) {
		return Key{}, fmt.Errorf("store key %q: id must be 1-64 of [A-Za-z0-9._-]", id)
	}
	if len(secret) < MinSecretLen {
		return Key{}, fmt.Errorf("store key %q: secret has %d bytes, need at least %d", id, len(secret), MinSecretLen)
	}
	k, err := hkdf.Key(sha256.New, secret, nil, hkdfInfo, 32)
	if err != nil {
		return Key{}, fmt.Errorf("store key %q: derive: %w", id, err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return Key{}, fmt.Errorf("store key %q: %w", id, err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return Key{}, fmt.Errorf("store key %q: %w", id, err)
	}
	return Key{ID: id, aead: func() cipher.AEAD { return gcm }}, nil
}

func (k Key) valid() bool { return k.aead != nil }

// String returns the key id with the key material redacted.
func (k Key) String() string { return "store.Key{ID:" + k.ID + " Secret:" + redacted + "}" }

// GoString is String, for %#v.
func (k Key) GoString() string { return k.String() }

// Format prints String for every verb.
func (k Key) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// LogValue logs the id only.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", k.ID), slog.String("secret", redacted))
}

func validKeyID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// additionalData binds a ciphertext to its place: bucket path, record key
// and key id. NUL cannot occur in bucket paths or ids (validated).
func additionalData(bucket string, key []byte, keyID string) []byte {
	ad := make([]byte, 0, len(adPrefix)+len(bucket)+len(key)+len(keyID)+3)
	ad = append(ad, adPrefix...)
	ad = append(ad, 0)
	ad = append(ad, bucket...)
	ad = append(ad, 0)
	ad = append(ad, key...)
	ad = append(ad, 0)
	ad = append(ad, keyID...)
	return ad
}

// seal encrypts plaintext for the record (bucket, key):
//
//	version(1) | len(keyID)(1) | keyID | nonce(12) | AES-GCM ciphertext+tag
func seal(k Key, bucket string, key, plaintext []byte) ([]byte, error) {
	nonce := make([]byte, nonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return sealWithNonce(k, bucket, key, plaintext, nonce), nil
}

// sealWithNonce is seal with a given nonce (tests need determinism; a nonce
// must never repeat under one key).
func sealWithNonce(k Key, bucket string, key, plaintext, nonce []byte) []byte {
	out := make([]byte, 0, 2+len(k.ID)+nonceSize+len(plaintext)+16)
	out = append(out, envelopeVersion, byte(len(k.ID)))
	out = append(out, k.ID...)
	out = append(out, nonce...)
	return k.aead().Seal(out, nonce, plaintext, additionalData(bucket, key, k.ID))
}

// envelope is a parsed sealed record.
type envelope struct {
	keyID      string
	nonce      []byte
	ciphertext []byte
}

// parseEnvelope splits a sealed record without decrypting it. The data may
// come from a tampered file, so every length is checked.
func parseEnvelope(b []byte) (envelope, error) {
	if len(b) < 2 {
		return envelope{}, fmt.Errorf("%w: record of %d bytes is too short", ErrDecrypt, len(b))
	}
	if b[0] != envelopeVersion {
		return envelope{}, fmt.Errorf("%w: unknown record format %d", ErrDecrypt, b[0])
	}
	n := int(b[1])
	if len(b) < 2+n+nonceSize+16 {
		return envelope{}, fmt.Errorf("%w: record of %d bytes is truncated", ErrDecrypt, len(b))
	}
	id := string(b[2 : 2+n])
	if !validKeyID(id) {
		return envelope{}, fmt.Errorf("%w: invalid key id in record", ErrDecrypt)
	}
	return envelope{keyID: id, nonce: b[2+n : 2+n+nonceSize], ciphertext: b[2+n+nonceSize:]}, nil
}

// keyring holds the current key and older keys still accepted for reading.
type keyring struct {
	current Key
	byID    map[string]Key
}

func newKeyring(current Key, old []Key) (*keyring, error) {
	if !current.valid() {
		return nil, errors.New("store: no key (use NewKey)")
	}
	r := &keyring{current: current, byID: map[string]Key{current.ID: current}}
	for _, k := range old {
		if !k.valid() {
			return nil, fmt.Errorf("store: old key %q not created with NewKey", k.ID)
		}
		if _, dup := r.byID[k.ID]; dup {
			return nil, fmt.Errorf("store: duplicate key id %q", k.ID)
		}
		r.byID[k.ID] = k
	}
	return r, nil
}

// open decrypts a sealed record stored at (bucket, key).
func (r *keyring) open(bucket string, key, sealed []byte) ([]byte, error) {
	env, err := parseEnvelope(sealed)
	if err != nil {
		return nil, err
	}
	k, ok := r.byID[env.keyID]
	if !ok {
		return nil, fmt.Errorf("%w: record sealed with key %q", ErrUnknownKey, env.keyID)
	}
	pt, err := k.aead().Open(nil, env.nonce, env.ciphertext, additionalData(bucket, key, env.keyID))
	if err != nil {
		return nil, fmt.Errorf("%w (key %q)", ErrDecrypt, env.keyID)
	}
	return pt, nil
}

// keyCheckPlaintext is sealed once per key into the meta bucket, so that
// opening with a wrong secret fails early and clearly.
var keyCheckPlaintext = []byte("facegate gallery key check v1")

func checkKey(k Key, sealed []byte) error {
	r := &keyring{current: k, byID: map[string]Key{k.ID: k}}
	pt, err := r.open(bucketMeta, keyCheckName(k.ID), sealed)
	if err != nil || !bytes.Equal(pt, keyCheckPlaintext) {
		return fmt.Errorf("%w: key %q does not decrypt this gallery", ErrWrongKey, k.ID)
	}
	return nil
}
