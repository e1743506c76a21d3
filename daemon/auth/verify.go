package auth

import (
	"container/heap"
	"crypto/ed25519"
	"crypto/hmac"
	"encoding/hex"
	"fmt"
	"sync"
	"time"
)

// Verifier defaults.
const (
	DefaultWindow         = 60 * time.Second
	DefaultNonceCacheSize = 10000
)

// VerifierOptions configure a Verifier; zero values take the defaults.
type VerifierOptions struct {
	// Window is the accepted clock difference between the request's
	// timestamp and the verifier's clock, in both directions (default 60 s).
	Window time.Duration
	// NonceCacheSize bounds the nonces remembered (default 10000). Nonces
	// are kept until their timestamp leaves the window; when the cache is
	// full of live nonces, requests are refused (ErrNonceCacheFull) rather
	// than forgetting a nonce that could then be replayed.
	NonceCacheSize int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Journal, when set, is the file where accepted nonces are recorded
	// (fsync'd before Verify returns) and reloaded by NewVerifier, so a
	// request is accepted at most once even across restarts. Without it
	// the nonce cache lives in memory only.
	Journal string
}

// Verifier checks request signatures against a key ring. It is safe for
// concurrent use.
type Verifier struct {
	ring   *KeyRing
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	seen    map[string]struct{}
	expiry  nonceHeap
	limit   int
	journal *journal
}

// NewVerifier returns a Verifier for ring.
func NewVerifier(ring *KeyRing, opts VerifierOptions) (*Verifier, error) {
	if ring == nil || len(ring.order) == 0 {
		return nil, fmt.Errorf("new verifier: empty key ring")
	}
	if opts.Window == 0 {
		opts.Window = DefaultWindow
	}
	if opts.Window < 0 {
		return nil, fmt.Errorf("new verifier: negative window %s", opts.Window)
	}
	if opts.NonceCacheSize == 0 {
		opts.NonceCacheSize = DefaultNonceCacheSize
	}
	if opts.NonceCacheSize < 0 {
		return nil, fmt.Errorf("new verifier: negative nonce cache size %d", opts.NonceCacheSize)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	v := &Verifier{
		ring:   ring,
		window: opts.Window,
		now:    opts.Now,
		seen:   make(map[string]struct{}),
		limit:  opts.NonceCacheSize,
	}
	if opts.Journal != "" {
		j, live, err := openJournal(opts.Journal, opts.Now())
		if err != nil {
			return nil, fmt.Errorf("new verifier: %w", err)
		}
		v.journal = j
		for _, e := range live {
			if _, dup := v.seen[e.nonce]; !dup {
				v.seen[e.nonce] = struct{}{}
				heap.Push(&v.expiry, e)
			}
		}
	}
	return v, nil
}

// Close closes the nonce journal, if any.
func (v *Verifier) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.journal == nil {
		return nil
	}
	err := v.journal.close()
	v.journal = nil
	return err
}

// Verify checks f against r. The order is: field syntax (ErrMalformed),
// timestamp window (ErrStaleTimestamp), key id (ErrUnknownKey), signature in
// constant time (ErrBadSignature), and only for an authentic request the
// nonce (ErrReplay, or ErrNonceCacheFull), which it then records (durably,
// with a journal: ErrJournal when that fails). An unauthenticated request
// thus never enters the nonce cache. Returned errors carry no secret and
// can be logged; map them to reply codes with Code.
func (v *Verifier) Verify(f Fields, r Request) error {
	if err := v.check(f, r); err != nil {
		return err
	}
	return v.remember(f.KeyID+"\x00"+f.Nonce, time.Unix(f.Timestamp, 0).Add(v.window), v.now())
}

// Check is Verify without recording the nonce: a request that passes it
// is authentic, fresh and not yet seen, but Verify must still accept it
// (exactly once) before it is executed. It is cheap enough to run on every
// message as it arrives, before the request takes a queue slot.
func (v *Verifier) Check(f Fields, r Request) error {
	if err := v.check(f, r); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, dup := v.seen[f.KeyID+"\x00"+f.Nonce]; dup {
		return ErrReplay
	}
	return nil
}

func (v *Verifier) check(f Fields, r Request) error {
	c, sig, err := parseSigned(f, r)
	if err != nil {
		return err
	}
	ts := time.Unix(f.Timestamp, 0)
	now := v.now()
	if d := now.Sub(ts); d > v.window || d < -v.window {
		return fmt.Errorf("%w: timestamp %d is %s from now (window ±%s)", ErrStaleTimestamp, f.Timestamp, d.Round(time.Second), v.window)
	}
	return verifySignature(v.ring, f, r, c, sig, false)
}

// ErrHMACRefused: the request is signed with an HMAC key where only
// Ed25519 operator keys are accepted (a site's gates hold every HMAC
// secret, so an HMAC signature does not prove an operator made it).
var ErrHMACRefused = &authError{"auth: HMAC key refused: only Ed25519 operator keys are accepted", CodeUnauthorised}

// CheckSignature checks only the signature of f over r with the keys of
// ring: field syntax (ErrMalformed), key id (ErrUnknownKey), scheme
// (ErrHMACRefused for an HMAC key when ed25519Only) and signature
// (ErrBadSignature). Unlike Verifier it checks no clock window and keeps
// no nonces: it is for requests checked again long after they were
// accepted, such as the changes a site's gates replicate (daemon/site.go),
// whose freshness and uniqueness are checked otherwise.
func CheckSignature(ring *KeyRing, f Fields, r Request, ed25519Only bool) error {
	if ring == nil {
		return fmt.Errorf("%w %q: no key ring", ErrUnknownKey, f.KeyID)
	}
	c, sig, err := parseSigned(f, r)
	if err != nil {
		return err
	}
	return verifySignature(ring, f, r, c, sig, ed25519Only)
}

// parseSigned returns the canonical form and the decoded signature, which
// must be 64 or 128 lowercase hex digits (HMAC-SHA256 or Ed25519).
func parseSigned(f Fields, r Request) (canonical, sig []byte, err error) {
	c, err := Canonical(f, r)
	if err != nil {
		return nil, nil, err
	}
	if n := len(f.Signature); n != HMACSignatureHexLen && n != Ed25519SignatureHexLen {
		return nil, nil, fmt.Errorf("%w: signature must be %d (HMAC) or %d (Ed25519) lowercase hex digits", ErrMalformed, HMACSignatureHexLen, Ed25519SignatureHexLen)
	}
	for i := 0; i < len(f.Signature); i++ {
		if h := f.Signature[i]; !isDigit(h) && (h < 'a' || h > 'f') {
			return nil, nil, fmt.Errorf("%w: signature must be lowercase hex digits", ErrMalformed)
		}
	}
	sig, err = hex.DecodeString(f.Signature)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: signature: %w", ErrMalformed, err)
	}
	return c, sig, nil
}

// verifySignature checks sig over the canonical form c with the ring's key
// named by f.KeyID; the key's type, never the request, chooses the scheme.
func verifySignature(ring *KeyRing, f Fields, r Request, c, sig []byte, ed25519Only bool) error {
	k, ok := ring.Lookup(f.KeyID)
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownKey, f.KeyID)
	}
	switch k.typ {
	case KeyEd25519Public, KeyEd25519Private:
		if len(sig) != ed25519.SignatureSize || !ed25519.Verify(k.PublicKey(), c, sig) {
			return fmt.Errorf("%w (Ed25519 key %q, request %q)", ErrBadSignature, f.KeyID, r.RequestID)
		}
	default:
		if ed25519Only {
			return fmt.Errorf("%w (key %q, request %q)", ErrHMACRefused, f.KeyID, r.RequestID)
		}
		if !hmac.Equal(sig, mac(k, c)) {
			return fmt.Errorf("%w (key %q, request %q)", ErrBadSignature, f.KeyID, r.RequestID)
		}
	}
	return nil
}

// remember records a nonce until expires, or reports it as replayed.
func (v *Verifier) remember(nonce string, expires, now time.Time) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	for len(v.expiry) > 0 && v.expiry[0].expires.Before(now) {
		delete(v.seen, heap.Pop(&v.expiry).(nonceEntry).nonce)
	}
	if _, dup := v.seen[nonce]; dup {
		return ErrReplay
	}
	if len(v.seen) >= v.limit {
		return fmt.Errorf("%w (%d live nonces)", ErrNonceCacheFull, len(v.seen))
	}
	e := nonceEntry{nonce: nonce, expires: expires}
	if v.journal != nil {
		// Durable before accepted: a crash after this line cannot let the
		// same request in again.
		if err := v.journal.append(e, v.expiry); err != nil {
			return fmt.Errorf("%w: %w", ErrJournal, err)
		}
	}
	v.seen[nonce] = struct{}{}
	heap.Push(&v.expiry, e)
	return nil
}

// NonceCacheLen returns the number of nonces currently remembered.
func (v *Verifier) NonceCacheLen() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.seen)
}

type nonceEntry struct {
	nonce   string
	expires time.Time
}

// nonceHeap is a min-heap of nonces by expiry.
type nonceHeap []nonceEntry

func (h nonceHeap) Len() int           { return len(h) }
func (h nonceHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h nonceHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *nonceHeap) Push(x any)        { *h = append(*h, x.(nonceEntry)) }
func (h *nonceHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
