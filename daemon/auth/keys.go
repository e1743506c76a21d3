package auth

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// Key sizes accepted in a key ring.
const (
	MinSecretLen = 32
	MaxSecretLen = 1024
	maxKeyFile   = 1 << 20
	// EnvCredentialsDirectory is set by systemd for services with
	// LoadCredential= or SetCredential=.
	EnvCredentialsDirectory = "CREDENTIALS_DIRECTORY"
	redacted                = "[REDACTED]"
)

// Key errors, tested with errors.Is.
var (
	ErrKeyFile       = errors.New("auth: invalid key file")
	ErrInsecureFile  = errors.New("auth: key file is readable by group or others")
	ErrNoCredentials = errors.New("auth: $" + EnvCredentialsDirectory + " is not set (no systemd credentials)")
)

// secret holds key material inside a closure: fmt and other reflection-based
// printers render a func as an address, whatever the verb and however deep
// (a pointer to a struct would be dereferenced by fmt's bad-verb output, as
// in %s of an unexported []Key field).
type secret func() []byte

func newSecret(b []byte) secret {
	c := bytes.Clone(b)
	return func() []byte { return c }
}

// KeyType is the kind of a Key: which signature scheme it serves and
// whether it can sign.
type KeyType uint8

// Key types. The zero value is HMAC, the type of every key before Ed25519
// operator keys (docs/security.md, "Ed25519 operator keys").
const (
	// KeyHMAC is a shared secret: HMAC-SHA256, signs and verifies. Whoever
	// verifies can also sign.
	KeyHMAC KeyType = iota
	// KeyEd25519Public is an operator's Ed25519 public key: verifies only.
	// Ring line "ed25519:<id>:<base64 32-byte public key>"; what gates hold.
	KeyEd25519Public
	// KeyEd25519Private is an operator's Ed25519 private key (its 32-byte
	// seed): signs, and verifies. Ring line "ed25519-private:<id>:<base64
	// seed>"; only in the operator's tool, never on a gate.
	KeyEd25519Private
)

// Ring line prefixes of the typed key lines.
const (
	prefixHMAC           = "hmac"
	prefixEd25519        = "ed25519"
	prefixEd25519Private = "ed25519-private"
)

// String names the type as in key ring lines: hmac, ed25519,
// ed25519-private.
func (t KeyType) String() string {
	switch t {
	case KeyHMAC:
		return prefixHMAC
	case KeyEd25519Public:
		return prefixEd25519
	case KeyEd25519Private:
		return prefixEd25519Private
	}
	return fmt.Sprintf("KeyType(%d)", uint8(t))
}

// Key is a named signing or verification key: an HMAC secret, an Ed25519
// public key or an Ed25519 private key (Type). Its String, GoString,
// Format and LogValue methods never reveal secret material; Secret returns
// a copy of an HMAC secret for the code that needs the bytes.
type Key struct {
	ID     string
	secret secret // HMAC: the secret; Ed25519: the public key or the seed
	typ    KeyType
}

// NewKey returns a key with a copy of secret. The id must be 1-64 of
// [A-Za-z0-9._-] and the secret 32-1024 bytes.
func NewKey(id string, sec []byte) (Key, error) {
	if !validKeyID(id) {
		return Key{}, fmt.Errorf("%w: key id %q must be 1-64 of [A-Za-z0-9._-]", ErrKeyFile, id)
	}
	if len(sec) < MinSecretLen || len(sec) > MaxSecretLen {
		return Key{}, fmt.Errorf("%w: key %q has a %d-byte secret; need %d to %d bytes", ErrKeyFile, id, len(sec), MinSecretLen, MaxSecretLen)
	}
	return Key{ID: id, secret: newSecret(sec)}, nil
}

// NewEd25519PublicKey returns an operator's public key (32 bytes), which
// verifies signatures and cannot make them.
func NewEd25519PublicKey(id string, pub []byte) (Key, error) {
	if !validKeyID(id) {
		return Key{}, fmt.Errorf("%w: key id %q must be 1-64 of [A-Za-z0-9._-]", ErrKeyFile, id)
	}
	if len(pub) != ed25519.PublicKeySize {
		return Key{}, fmt.Errorf("%w: Ed25519 key %q has %d bytes; a public key has %d", ErrKeyFile, id, len(pub), ed25519.PublicKeySize)
	}
	return Key{ID: id, secret: newSecret(pub), typ: KeyEd25519Public}, nil
}

// NewEd25519PrivateKey returns an operator's private key from its 32-byte
// seed (RFC 8032's private key).
func NewEd25519PrivateKey(id string, seed []byte) (Key, error) {
	if !validKeyID(id) {
		return Key{}, fmt.Errorf("%w: key id %q must be 1-64 of [A-Za-z0-9._-]", ErrKeyFile, id)
	}
	if len(seed) != ed25519.SeedSize {
		return Key{}, fmt.Errorf("%w: Ed25519 private key %q has %d bytes; a seed has %d", ErrKeyFile, id, len(seed), ed25519.SeedSize)
	}
	return Key{ID: id, secret: newSecret(seed), typ: KeyEd25519Private}, nil
}

// GenerateEd25519 returns a new operator private key with id, from
// crypto/rand.
func GenerateEd25519(id string) (Key, error) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return Key{}, fmt.Errorf("generate Ed25519 key %q: %w", id, err)
	}
	return NewEd25519PrivateKey(id, priv.Seed())
}

// Type returns the key's type.
func (k Key) Type() KeyType { return k.typ }

// PublicKey returns the Ed25519 public key of an Ed25519 key (public or
// private), nil for an HMAC key.
func (k Key) PublicKey() ed25519.PublicKey {
	switch k.typ {
	case KeyEd25519Public:
		return ed25519.PublicKey(k.bytes())
	case KeyEd25519Private:
		return ed25519.NewKeyFromSeed(k.bytes()).Public().(ed25519.PublicKey)
	}
	return nil
}

// Public returns the public half of an Ed25519 key as a key of its own
// (what gates hold); an Ed25519 public key is returned as is. An HMAC key
// has no public half: ok is false.
func (k Key) Public() (pub Key, ok bool) {
	p := k.PublicKey()
	if p == nil {
		return Key{}, false
	}
	return Key{ID: k.ID, secret: newSecret(p), typ: KeyEd25519Public}, true
}

// PublicLine returns the key ring line of an Ed25519 key's public half,
// "ed25519:<id>:<base64 public key>", for the gates' FACEGATE_ENROLL_KEYS;
// "" for an HMAC key. It reveals nothing secret.
func (k Key) PublicLine() string {
	p := k.PublicKey()
	if p == nil {
		return ""
	}
	return prefixEd25519 + ":" + k.ID + ":" + base64.StdEncoding.EncodeToString(p)
}

// PrivateLine returns the key ring line that holds an Ed25519 private
// key, "ed25519-private:<id>:<base64 seed>", for the operator's key file
// (facegate site keygen -operator); "" for any other key. The line is
// secret: write it to a 0600 file, never to a log.
func (k Key) PrivateLine() string {
	if k.typ != KeyEd25519Private {
		return ""
	}
	return prefixEd25519Private + ":" + k.ID + ":" + base64.StdEncoding.EncodeToString(k.bytes())
}

// Secret returns a copy of an HMAC key's secret (nil for the zero Key and
// for Ed25519 keys, which are not secrets usable as symmetric keys).
func (k Key) Secret() []byte {
	if k.secret == nil || k.typ != KeyHMAC {
		return nil
	}
	return bytes.Clone(k.secret())
}

func (k Key) bytes() []byte {
	if k.secret == nil {
		return nil
	}
	return k.secret()
}

// String returns the key id (and the type of an Ed25519 key) with the
// secret redacted.
func (k Key) String() string {
	if k.typ == KeyHMAC {
		return "Key{ID:" + k.ID + " Secret:" + redacted + "}"
	}
	return "Key{ID:" + k.ID + " Type:" + k.typ.String() + " Secret:" + redacted + "}"
}

// GoString is String, for %#v.
func (k Key) GoString() string { return "auth." + k.String() }

// Format prints String for every verb, so %x or %d cannot dump the secret.
func (k Key) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// LogValue logs the id, the type and a redacted secret.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", k.ID), slog.String("type", k.typ.String()), slog.String("secret", redacted))
}

// KeyRing maps key ids to keys, keeping the order of the file (the first key
// is the ring's current key for users that need one, such as the gallery
// store's encryption key). It is immutable and safe for concurrent use.
type KeyRing struct {
	keys  map[string]Key
	order []string
}

// NewKeyRing builds a ring from keys; ids must be unique and at least one
// key is required.
func NewKeyRing(keys ...Key) (*KeyRing, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no keys", ErrKeyFile)
	}
	r := &KeyRing{keys: make(map[string]Key, len(keys))}
	for _, k := range keys {
		if k.secret == nil {
			return nil, fmt.Errorf("%w: key %q has no secret (use NewKey)", ErrKeyFile, k.ID)
		}
		if _, dup := r.keys[k.ID]; dup {
			return nil, fmt.Errorf("%w: duplicate key id %q", ErrKeyFile, k.ID)
		}
		r.keys[k.ID] = k
		r.order = append(r.order, k.ID)
	}
	return r, nil
}

// Lookup returns the key with the given id.
func (r *KeyRing) Lookup(id string) (Key, bool) {
	k, ok := r.keys[id]
	return k, ok
}

// Keys returns the keys in file order.
func (r *KeyRing) Keys() []Key {
	out := make([]Key, 0, len(r.order))
	for _, id := range r.order {
		out = append(out, r.keys[id])
	}
	return out
}

// Current returns the first key of the ring.
func (r *KeyRing) Current() Key { return r.keys[r.order[0]] }

// IDsOf returns the ids of the keys of type t, in file order.
func (r *KeyRing) IDsOf(t KeyType) []string {
	var out []string
	for _, id := range r.order {
		if r.keys[id].typ == t {
			out = append(out, id)
		}
	}
	return out
}

// IDs returns the key ids in file order.
func (r *KeyRing) IDs() []string { return append([]string(nil), r.order...) }

// String lists the key ids only.
func (r *KeyRing) String() string { return "KeyRing{" + strings.Join(r.order, ",") + "}" }

// GoString is String, for %#v.
func (r *KeyRing) GoString() string { return "auth." + r.String() }

// Format prints String for every verb.
func (r *KeyRing) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, r.String()) }

// LogValue logs the key ids only.
func (r *KeyRing) LogValue() slog.Value {
	return slog.GroupValue(slog.Any("key_ids", r.order))
}

// CredentialPath returns the path of the systemd credential name, that is
// $CREDENTIALS_DIRECTORY/name, as set up by LoadCredential=name:/path in the
// unit. It fails with ErrNoCredentials outside such a service.
func CredentialPath(name string) (string, error) {
	dir := os.Getenv(EnvCredentialsDirectory)
	if dir == "" {
		return "", fmt.Errorf("credential %q: %w", name, ErrNoCredentials)
	}
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return "", fmt.Errorf("credential name %q: must be a plain file name", name)
	}
	return filepath.Join(dir, name), nil
}

// LoadKeyRing reads a key ring from path (format: see ParseKeyRing). The
// file must be a regular file that is not readable or writable by group or
// others (mode 0600 or 0400), unless it lies in $CREDENTIALS_DIRECTORY,
// which systemd protects itself. Error messages never include key material.
func LoadKeyRing(path string) (*KeyRing, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load key ring: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load key ring: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("load key ring %s: %w: not a regular file", path, ErrKeyFile)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 && !inCredentialsDir(path) {
		return nil, fmt.Errorf("load key ring %s: %w (mode %04o): run chmod 600 on it, or pass it with systemd LoadCredential=", path, ErrInsecureFile, perm)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("load key ring %s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("load key ring %s: %w: larger than %d bytes", path, ErrKeyFile, maxKeyFile)
	}
	r, err := ParseKeyRing(data)
	if err != nil {
		return nil, fmt.Errorf("load key ring %s: %w", path, err)
	}
	return r, nil
}

// inCredentialsDir reports whether path is directly inside
// $CREDENTIALS_DIRECTORY.
func inCredentialsDir(path string) bool {
	dir := os.Getenv(EnvCredentialsDirectory)
	if dir == "" {
		return false
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	return filepath.Dir(abs) == absDir
}

// ParseKeyRing decodes a key ring. Two formats are accepted:
//
//   - lines "key_id:base64secret" (an HMAC key); blank lines and lines
//     starting with '#' are ignored, surrounding spaces are trimmed. A
//     line with a type prefix, "<type>:<key_id>:<base64>", names the key's
//     type: "hmac" (the same as no prefix), "ed25519" (an operator's
//     32-byte public key) or "ed25519-private" (an operator's 32-byte
//     seed). Base64 has no ':', so the prefix is unambiguous;
//   - a JSON object {"key_id": "base64secret", ...}, HMAC keys only.
//
// Secrets are standard base64 (padding optional) of 32-1024 bytes; ids are
// 1-64 of [A-Za-z0-9._-] and unique across types. The order of the keys is
// kept.
func ParseKeyRing(data []byte) (*KeyRing, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return parseJSONRing(trimmed)
	}
	return parseLineRing(data)
}

func parseLineRing(data []byte) (*KeyRing, error) {
	var keys []Key
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, enc, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%w: line %d: want key_id:base64secret or type:key_id:base64", ErrKeyFile, i+1)
		}
		typ := KeyHMAC
		if id2, enc2, typed := strings.Cut(enc, ":"); typed {
			switch strings.TrimSpace(id) {
			case prefixHMAC:
			case prefixEd25519:
				typ = KeyEd25519Public
			case prefixEd25519Private:
				typ = KeyEd25519Private
			default:
				return nil, fmt.Errorf("%w: line %d: key type %q is not hmac, ed25519 or ed25519-private", ErrKeyFile, i+1, truncate(strings.TrimSpace(id), 40))
			}
			id, enc = id2, enc2
		}
		k, err := decodeTypedKey(typ, strings.TrimSpace(id), strings.TrimSpace(enc))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	return NewKeyRing(keys...)
}

func parseJSONRing(data []byte) (*KeyRing, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("%w: JSON key ring must be an object of key_id: base64secret", ErrKeyFile)
	}
	var keys []Key
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: JSON key ring: syntax error at offset %d", ErrKeyFile, dec.InputOffset())
		}
		id, _ := tok.(string)
		var enc string
		if err := dec.Decode(&enc); err != nil {
			return nil, fmt.Errorf("%w: JSON key ring: value of %q must be a base64 string", ErrKeyFile, id)
		}
		k, err := decodeKey(id, enc)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, fmt.Errorf("%w: JSON key ring: unterminated object", ErrKeyFile)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: JSON key ring: trailing data after the object", ErrKeyFile)
	}
	return NewKeyRing(keys...)
}

func decodeKey(id, enc string) (Key, error) { return decodeTypedKey(KeyHMAC, id, enc) }

func decodeTypedKey(typ KeyType, id, enc string) (Key, error) {
	if !validKeyID(id) {
		return Key{}, fmt.Errorf("%w: key id %q must be 1-64 of [A-Za-z0-9._-]", ErrKeyFile, truncate(id, 80))
	}
	sec, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(enc, "="))
	if err != nil {
		// Deliberately no detail: the message must not quote the secret.
		return Key{}, fmt.Errorf("%w: key %q: secret is not valid standard base64", ErrKeyFile, id)
	}
	switch typ {
	case KeyEd25519Public:
		return NewEd25519PublicKey(id, sec)
	case KeyEd25519Private:
		return NewEd25519PrivateKey(id, sec)
	}
	return NewKey(id, sec)
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

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
