package store

import (
	"errors"
	"fmt"
)

// blobPrefix keeps blob additional data apart from gallery records, whose
// bucket names never start with it.
const blobPrefix = "blob:"

// SealBlob seals plaintext under k with the gallery's record scheme
// (AES-256-GCM, a random nonce, the key id in the envelope), bound to
// (domain, name) as additional data: OpenBlob with another domain or name
// fails. It lets other packages (site replication) carry templates sealed
// under the gallery key without a copy of the scheme. domain must not
// contain NUL.
func SealBlob(k Key, domain string, name, plaintext []byte) ([]byte, error) {
	if !k.valid() {
		return nil, errors.New("store: seal blob: no key (use NewKey)")
	}
	return seal(k, blobPrefix+domain, name, plaintext)
}

// OpenBlob opens what SealBlob sealed under any of keys for (domain, name).
// Errors match ErrUnknownKey (sealed under a key id not in keys) or
// ErrDecrypt (tampered, moved or wrong secret).
func OpenBlob(keys []Key, domain string, name, sealed []byte) ([]byte, error) {
	if len(keys) == 0 {
		return nil, errors.New("store: open blob: no key")
	}
	r, err := newKeyring(keys[0], keys[1:])
	if err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	return r.open(blobPrefix+domain, name, sealed)
}

// EncodeTemplate returns a template in the gallery's binary record form
// (model name and version, created time, float32 values, little endian),
// after validating it; errors match ErrInvalid.
func EncodeTemplate(t Template) ([]byte, error) {
	if err := validateTemplate(&t); err != nil {
		return nil, err
	}
	return encodeTemplate(t), nil
}

// DecodeTemplate parses EncodeTemplate's output strictly; errors match
// ErrCorrupt.
func DecodeTemplate(b []byte) (Template, error) { return decodeTemplate(b) }
