package site

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Verifier checks the operator's signature of the request that authorised
// a change (c.Request), without a time window or nonce cache: the
// Replicator checks the timestamp against the time the stream stored the
// change, and the stream's deduplication of change ids replaces the nonce
// cache. The daemon implements it with daemon/auth's key ring
// (daemon.SiteVerifier: auth.CheckSignature, Ed25519 operator keys only
// unless FACEGATE_SITE_OPERATOR_KEYS=any, since every gate holds the HMAC
// secrets). Implementations must be safe for concurrent use.
type Verifier interface {
	Verify(c *Change) error
}

// SeqVerifier is a Verifier that is also told the stream sequence of the
// change (assigned by the NATS servers, so no gate can choose it); the
// Replicator calls VerifyAt instead of Verify when its Verifier has it. It
// lets a key be trusted for the history up to a sequence only (a retired
// or revoked operator key).
type SeqVerifier interface {
	Verifier
	VerifyAt(seq uint64, c *Change) error
}

// VerifierFunc adapts a function to Verifier.
type VerifierFunc func(c *Change) error

// Verify implements Verifier.
func (f VerifierFunc) Verify(c *Change) error { return f(c) }

// Refusal reasons, tested with errors.Is.
var (
	// ErrGateSignature: the change is not signed by the gate it names as
	// its origin (or that gate is not part of the site).
	ErrGateSignature = errors.New("site: bad gate signature")
	// ErrStale: the request's timestamp is too far from the time the
	// stream stored the change (a replayed request).
	ErrStale = errors.New("site: request timestamp outside the window")
	// ErrMsgID: the message id the stream deduplicated on is not the
	// change's id.
	ErrMsgID = errors.New("site: message id does not match the change id")
	// ErrUnsigned: the operator's signature is missing or wrong.
	ErrUnsigned = errors.New("site: request signature refused")
)

// DefaultWindow is the largest accepted difference between a request's
// timestamp and the time the stream stored its change; it matches
// daemon/auth's default window, so a request the accepting gate just
// accepted is never refused by the others.
const DefaultWindow = 2 * time.Minute

// checkStored refuses a change whose request was signed more than window
// away from when the stream stored it.
func checkStored(c *Change, stored time.Time, window time.Duration) error {
	ts := time.Unix(c.Request.TS, 0)
	if d := stored.Sub(ts); d > window || d < -window {
		return fmt.Errorf("%w: change %s signed at %d, stored %s later (window ±%s)", ErrStale, c.ID, c.Request.TS, d.Round(time.Second), window)
	}
	return nil
}

// GateKeys are the Ed25519 public keys of a site's gates, by gate id.
type GateKeys map[string]ed25519.PublicKey

// ParseGateKeys reads lines of "<gate id> <base64 Ed25519 public key>";
// blank lines and lines starting with # are ignored.
func ParseGateKeys(b []byte) (GateKeys, error) {
	keys := GateKeys{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, enc, ok := strings.Cut(line, " ")
		if !ok || !validGate(id) {
			return nil, fmt.Errorf("gate keys line %d: want \"<gate id> <base64 public key>\"", n)
		}
		pub, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
		if err != nil || len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("gate keys line %d: gate %q: not a base64 Ed25519 public key", n, id)
		}
		if _, dup := keys[id]; dup {
			return nil, fmt.Errorf("gate keys line %d: gate %q listed twice", n, id)
		}
		keys[id] = pub
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("gate keys: %w", err)
	}
	if len(keys) == 0 {
		return nil, errors.New("gate keys: none listed")
	}
	return keys, nil
}

// LoadGateKey reads a gate's own signing key: the base64 32-byte Ed25519
// seed, alone in the file (mode 0600 or stricter).
func LoadGateKey(path string) (ed25519.PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("gate key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("gate key %s: mode %04o, want 0600 or stricter", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gate key: %w", err)
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("gate key %s: not a base64 Ed25519 seed of %d bytes", path, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
