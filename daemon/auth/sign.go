package auth

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/facegate/facegate/internal/ident"
)

// Version is the first line of the canonical form.
const Version = "FGv1"

// Field limits of the canonical form (see docs/security.md).
const (
	MinNonceLen     = 16
	MaxNonceLen     = 64
	MaxOperationLen = 256
	MaxRequestIDLen = ident.MaxIDLen
	// MaxTimestamp is the largest accepted timestamp (year 5138); it keeps
	// time arithmetic far from overflow.
	MaxTimestamp = 99_999_999_999
	// HMACSignatureHexLen and Ed25519SignatureHexLen are the lengths of
	// the two kinds of signature field (lowercase hex of 32 and 64 bytes).
	HMACSignatureHexLen    = 2 * sha256.Size
	Ed25519SignatureHexLen = 2 * ed25519.SignatureSize
)

// Reply codes for authentication failures.
const (
	CodeUnauthorised = "unauthorised"
	CodeReplay       = "replay"
	CodeInternal     = "internal"
)

// authError is the type of the sentinel errors below; it lets every
// failure other than replay also match ErrUnauthorised.
type authError struct {
	msg  string
	code string
}

func (e *authError) Error() string { return e.msg }

// Is makes errors.Is(err, ErrUnauthorised) true for every error whose reply
// code is "unauthorised".
func (e *authError) Is(target error) bool {
	return target == ErrUnauthorised && e.code == CodeUnauthorised
}

// Verification errors. All but ErrReplay and ErrJournal also match
// ErrUnauthorised.
var (
	ErrUnauthorised   = errors.New("auth: unauthorised")
	ErrMalformed      = &authError{"auth: malformed authentication fields", CodeUnauthorised}
	ErrUnknownKey     = &authError{"auth: unknown key id", CodeUnauthorised}
	ErrBadSignature   = &authError{"auth: bad signature", CodeUnauthorised}
	ErrStaleTimestamp = &authError{"auth: timestamp outside the allowed window", CodeUnauthorised}
	ErrNonceCacheFull = &authError{"auth: nonce cache full; request refused", CodeUnauthorised}
	ErrReplay         = &authError{"auth: nonce already used (replay)", CodeReplay}
	// ErrJournal: the nonce could not be recorded durably (disk full, I/O
	// error), so the authentic request is refused rather than accepted
	// without replay protection.
	ErrJournal = &authError{"auth: cannot record the nonce", CodeInternal}
)

// Code maps a Verify error to its reply code: "" for nil, "replay" for
// ErrReplay, "internal" for ErrJournal and "unauthorised" for any other
// error.
func Code(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrReplay):
		return CodeReplay
	case errors.Is(err, ErrJournal):
		return CodeInternal
	default:
		return CodeUnauthorised
	}
}

// Fields are the authentication fields carried with a request, as the
// client sends them (JSON names as in docs/schemas/enroll-request.json).
type Fields struct {
	KeyID     string `json:"key_id"` // 1-64 of [A-Za-z0-9._-]
	Timestamp int64  `json:"ts"`     // unix seconds, 1..MaxTimestamp
	Nonce     string `json:"nonce"`  // 16-64 of [A-Za-z0-9_-], unique per request
	Signature string `json:"sig"`    // lowercase hex: HMAC-SHA256 (64 digits) or Ed25519 (128) of the canonical form, by the key's type
}

// Request is what the signature covers besides the Fields.
type Request struct {
	Operation string // the operation or MQTT topic, printable ASCII without spaces
	RequestID string // 1-128 of [A-Za-z0-9._:-]
	Body      []byte // the payload bytes exactly as transmitted
}

// Canonical returns the canonical form that is signed:
//
//	FGv1\n<key_id>\n<timestamp>\n<nonce>\n<operation>\n<request_id>\n<sha256 hex of body>
//
// without a trailing newline; the timestamp in decimal without sign or
// leading zeros, the SHA-256 in lowercase hex. Every field is validated first, so no field
// can contain a newline or otherwise be ambiguous; invalid fields give an
// error wrapping ErrMalformed. f.Signature is ignored.
func Canonical(f Fields, r Request) ([]byte, error) {
	if err := validate(f, r); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(r.Body)
	b := make([]byte, 0, 64+len(f.KeyID)+20+len(f.Nonce)+len(r.Operation)+len(r.RequestID)+2*len(sum))
	b = append(b, Version...)
	for _, s := range []string{f.KeyID, strconv.FormatInt(f.Timestamp, 10), f.Nonce, r.Operation, r.RequestID} {
		b = append(b, '\n')
		b = append(b, s...)
	}
	b = append(b, '\n')
	b = hex.AppendEncode(b, sum[:])
	return b, nil
}

func validate(f Fields, r Request) error {
	if !validKeyID(f.KeyID) {
		return fmt.Errorf("%w: key_id must be 1-64 of [A-Za-z0-9._-]", ErrMalformed)
	}
	if f.Timestamp < 1 || f.Timestamp > MaxTimestamp {
		return fmt.Errorf("%w: ts must be unix seconds from 1 to %d", ErrMalformed, int64(MaxTimestamp))
	}
	if n := len(f.Nonce); n < MinNonceLen || n > MaxNonceLen || !allBytes(f.Nonce, isNonceByte) {
		return fmt.Errorf("%w: nonce must be %d-%d of [A-Za-z0-9_-]", ErrMalformed, MinNonceLen, MaxNonceLen)
	}
	if n := len(r.Operation); n == 0 || n > MaxOperationLen || !allBytes(r.Operation, isOperationByte) {
		return fmt.Errorf("%w: operation must be 1-%d printable ASCII characters without spaces", ErrMalformed, MaxOperationLen)
	}
	if err := ident.CheckID(r.RequestID); err != nil {
		return fmt.Errorf("%w: request_id: %v", ErrMalformed, err)
	}
	return nil
}

func allBytes(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c)
}
func isNonceByte(c byte) bool     { return isAlnum(c) || c == '-' || c == '_' }
func isOperationByte(c byte) bool { return c > ' ' && c < 0x7f }

// mac computes the HMAC-SHA256 of the canonical form.
func mac(k Key, canonical []byte) []byte {
	h := hmac.New(sha256.New, k.bytes())
	h.Write(canonical)
	return h.Sum(nil)
}

// ErrPublicKey: a key that can only verify (an Ed25519 public key) was
// asked to sign.
var ErrPublicKey = errors.New("auth: an Ed25519 public key cannot sign; sign with the operator's private key file (facegate site keygen -operator)")

// SignFields fills f.Signature for r with key k. f.KeyID is set to k.ID;
// the timestamp and nonce must already be set. An HMAC key signs with
// HMAC-SHA256 (64 hex digits), an Ed25519 private key with Ed25519 (128 hex
// digits); both over the same canonical form. An Ed25519 public key
// cannot sign (ErrPublicKey).
func SignFields(k Key, f Fields, r Request) (Fields, error) {
	if k.secret == nil {
		return Fields{}, fmt.Errorf("sign: key %q has no secret", k.ID)
	}
	if k.typ == KeyEd25519Public {
		return Fields{}, fmt.Errorf("sign: key %q: %w", k.ID, ErrPublicKey)
	}
	f.KeyID = k.ID
	c, err := Canonical(f, r)
	if err != nil {
		return Fields{}, fmt.Errorf("sign: %w", err)
	}
	switch k.typ {
	case KeyEd25519Private:
		f.Signature = hex.EncodeToString(ed25519.Sign(ed25519.NewKeyFromSeed(k.bytes()), c))
	default:
		f.Signature = hex.EncodeToString(mac(k, c))
	}
	return f, nil
}

// Sign authenticates r with key k at time now, with a fresh random nonce of
// 128 bits. Clients (the facegate enroll command, tests) send the returned
// Fields with the request.
func Sign(k Key, r Request, now time.Time) (Fields, error) {
	nonce, err := NewNonce()
	if err != nil {
		return Fields{}, err
	}
	return SignFields(k, Fields{Timestamp: now.Unix(), Nonce: nonce}, r)
}

// NewNonce returns 128 random bits as 22 characters of unpadded base64url.
func NewNonce() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("nonce: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
