package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Unix(1_790_000_000, 0)

func testKey(t testing.TB, id string, fill byte) Key {
	t.Helper()
	k, err := NewKey(id, bytes.Repeat([]byte{fill}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testRing(t testing.TB) (*KeyRing, Key, Key) {
	t.Helper()
	a, b := testKey(t, "door-1", 0xA1), testKey(t, "admin.2", 0xB2)
	r, err := NewKeyRing(a, b)
	if err != nil {
		t.Fatal(err)
	}
	return r, a, b
}

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock    { c := &clock{}; c.set(t); return c }
func (c *clock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }

var baseReq = Request{Operation: "facegate/door-1/enroll", RequestID: "req-0001", Body: []byte(`{"id":"alice"}`)}
var baseFields = Fields{KeyID: "door-1", Timestamp: t0.Unix(), Nonce: "AAAAAAAAAAAAAAAAAAAAAA"}

func TestCanonicalGolden(t *testing.T) {
	got, err := Canonical(baseFields, baseReq)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(baseReq.Body)
	want := "FGv1\ndoor-1\n1790000000\nAAAAAAAAAAAAAAAAAAAAAA\nfacegate/door-1/enroll\nreq-0001\n" + hex.EncodeToString(sum[:])
	if string(got) != want {
		t.Fatalf("canonical form\n got %q\nwant %q", got, want)
	}
	// Known answer: an independent HMAC over the documented string.
	k := testKey(t, "door-1", 0xA1)
	f, err := SignFields(k, baseFields, baseReq)
	if err != nil {
		t.Fatal(err)
	}
	h := hmac.New(sha256.New, bytes.Repeat([]byte{0xA1}, 32))
	h.Write([]byte(want))
	if f.Signature != hex.EncodeToString(h.Sum(nil)) {
		t.Errorf("signature %s does not match HMAC-SHA256 of the documented canonical form", f.Signature)
	}
}

func TestCanonicalRejectsAmbiguousFields(t *testing.T) {
	tests := []struct {
		name string
		f    func(*Fields, *Request)
	}{
		{"empty key id", func(f *Fields, r *Request) { f.KeyID = "" }},
		{"newline in key id", func(f *Fields, r *Request) { f.KeyID = "a\nb" }},
		{"long key id", func(f *Fields, r *Request) { f.KeyID = strings.Repeat("k", 65) }},
		{"zero ts", func(f *Fields, r *Request) { f.Timestamp = 0 }},
		{"negative ts", func(f *Fields, r *Request) { f.Timestamp = -t0.Unix() }},
		{"huge ts", func(f *Fields, r *Request) { f.Timestamp = MaxTimestamp + 1 }},
		{"max int ts", func(f *Fields, r *Request) { f.Timestamp = 1<<63 - 1 }},
		{"short nonce", func(f *Fields, r *Request) { f.Nonce = "abc" }},
		{"long nonce", func(f *Fields, r *Request) { f.Nonce = strings.Repeat("n", 65) }},
		{"nonce padding", func(f *Fields, r *Request) { f.Nonce = "AAAAAAAAAAAAAAAAAAAAAA==" }},
		{"empty op", func(f *Fields, r *Request) { r.Operation = "" }},
		{"space in op", func(f *Fields, r *Request) { r.Operation = "enroll now" }},
		{"newline in op", func(f *Fields, r *Request) { r.Operation = "enroll\nreq-0002" }},
		{"utf8 op", func(f *Fields, r *Request) { r.Operation = "enrôll" }},
		{"empty request id", func(f *Fields, r *Request) { r.RequestID = "" }},
		{"slash request id", func(f *Fields, r *Request) { r.RequestID = "a/b" }},
		{"long request id", func(f *Fields, r *Request) { r.RequestID = strings.Repeat("r", 129) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, r := baseFields, baseReq
			tt.f(&f, &r)
			if _, err := Canonical(f, r); !errors.Is(err, ErrMalformed) {
				t.Errorf("Canonical = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	ring, a, b := testRing(t)
	other := testKey(t, "door-1", 0xCC) // same id, different secret
	sign := func(k Key, f Fields, r Request) Fields {
		s, err := SignFields(k, f, r)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := sign(a, baseFields, baseReq)
	tests := []struct {
		name  string
		f     Fields
		r     Request
		now   time.Time
		want  error
		code  string
		unath bool
	}{
		{"valid", good, baseReq, t0, nil, "", false},
		{"valid second key", sign(b, baseFields, baseReq), baseReq, t0, nil, "", false},
		{"edge of past window", good, baseReq, t0.Add(DefaultWindow), nil, "", false},
		{"edge of future window", good, baseReq, t0.Add(-DefaultWindow), nil, "", false},
		{"too old", good, baseReq, t0.Add(DefaultWindow + time.Second), ErrStaleTimestamp, CodeUnauthorised, true},
		{"from the future", good, baseReq, t0.Add(-DefaultWindow - time.Second), ErrStaleTimestamp, CodeUnauthorised, true},
		{"body changed", good, Request{baseReq.Operation, baseReq.RequestID, []byte(`{"id":"mallory"}`)}, t0, ErrBadSignature, CodeUnauthorised, true},
		{"operation changed", good, Request{"facegate/door-1/delete", baseReq.RequestID, baseReq.Body}, t0, ErrBadSignature, CodeUnauthorised, true},
		{"request id changed", good, Request{baseReq.Operation, "req-0002", baseReq.Body}, t0, ErrBadSignature, CodeUnauthorised, true},
		{"key id swapped", Fields{"admin.2", good.Timestamp, good.Nonce, good.Signature}, baseReq, t0, ErrBadSignature, CodeUnauthorised, true},
		{"nonce changed", Fields{good.KeyID, good.Timestamp, "BBBBBBBBBBBBBBBBBBBBBB", good.Signature}, baseReq, t0, ErrBadSignature, CodeUnauthorised, true},
		{"timestamp changed", Fields{good.KeyID, t0.Unix() + 1, good.Nonce, good.Signature}, baseReq, t0, ErrBadSignature, CodeUnauthorised, true},
		{"wrong secret", sign(other, baseFields, baseReq), baseReq, t0, ErrBadSignature, CodeUnauthorised, true},
		{"unknown key", sign(testKey(t, "stranger", 0xA1), baseFields, baseReq), baseReq, t0, ErrUnknownKey, CodeUnauthorised, true},
		{"uppercase signature", Fields{good.KeyID, good.Timestamp, good.Nonce, strings.ToUpper(good.Signature)}, baseReq, t0, ErrMalformed, CodeUnauthorised, true},
		{"short signature", Fields{good.KeyID, good.Timestamp, good.Nonce, good.Signature[:63]}, baseReq, t0, ErrMalformed, CodeUnauthorised, true},
		{"empty signature", Fields{good.KeyID, good.Timestamp, good.Nonce, ""}, baseReq, t0, ErrMalformed, CodeUnauthorised, true},
		{"non hex signature", Fields{good.KeyID, good.Timestamp, good.Nonce, strings.Repeat("g", 64)}, baseReq, t0, ErrMalformed, CodeUnauthorised, true},
		{"malformed nonce", Fields{good.KeyID, good.Timestamp, "short", good.Signature}, baseReq, t0, ErrMalformed, CodeUnauthorised, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(ring, VerifierOptions{Now: func() time.Time { return tt.now }})
			if err != nil {
				t.Fatal(err)
			}
			err = v.Verify(tt.f, tt.r)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if got := Code(err); got != tt.code {
				t.Errorf("Code = %q, want %q", got, tt.code)
			}
			if got := errors.Is(err, ErrUnauthorised); got != tt.unath {
				t.Errorf("errors.Is(err, ErrUnauthorised) = %v, want %v", got, tt.unath)
			}
			if err != nil && v.NonceCacheLen() != 0 {
				t.Errorf("rejected request entered the nonce cache")
			}
		})
	}
}

func TestReplay(t *testing.T) {
	ring, a, b := testRing(t)
	c := newClock(t0)
	v, err := NewVerifier(ring, VerifierOptions{Window: 30 * time.Second, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	f, err := Sign(a, baseReq, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(f, baseReq); err != nil {
		t.Fatalf("first Verify: %v", err)
	}
	c.add(10 * time.Second)
	if err := v.Verify(f, baseReq); !errors.Is(err, ErrReplay) || Code(err) != CodeReplay || errors.Is(err, ErrUnauthorised) {
		t.Fatalf("replay = %v (code %q), want ErrReplay", err, Code(err))
	}
	// The same nonce under another key is a different request.
	fb, err := SignFields(b, Fields{Timestamp: f.Timestamp, Nonce: f.Nonce}, baseReq)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Verify(fb, baseReq); err != nil {
		t.Errorf("same nonce, other key: %v", err)
	}
	// Once the timestamp leaves the window, the nonce is evicted and the
	// replay is refused by the timestamp check instead.
	c.add(21 * time.Second)
	g, _ := Sign(a, baseReq, c.now())
	if err := v.Verify(g, baseReq); err != nil {
		t.Fatalf("fresh request: %v", err)
	}
	if n := v.NonceCacheLen(); n != 1 {
		t.Errorf("nonce cache holds %d entries after expiry, want 1", n)
	}
	if err := v.Verify(f, baseReq); !errors.Is(err, ErrStaleTimestamp) {
		t.Errorf("old replay = %v, want ErrStaleTimestamp", err)
	}
}

func TestNonceCacheFull(t *testing.T) {
	ring, a, _ := testRing(t)
	c := newClock(t0)
	v, err := NewVerifier(ring, VerifierOptions{Window: 10 * time.Second, NonceCacheSize: 3, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		f, _ := Sign(a, baseReq, c.now())
		if err := v.Verify(f, baseReq); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	f, _ := Sign(a, baseReq, c.now())
	if err := v.Verify(f, baseReq); !errors.Is(err, ErrNonceCacheFull) || Code(err) != CodeUnauthorised {
		t.Fatalf("fourth request = %v, want ErrNonceCacheFull", err)
	}
	c.add(11 * time.Second)
	f, _ = Sign(a, baseReq, c.now())
	if err := v.Verify(f, baseReq); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if n := v.NonceCacheLen(); n != 1 {
		t.Errorf("cache holds %d, want 1", n)
	}
}

func TestConcurrentReplayAcceptsOnce(t *testing.T) {
	ring, a, _ := testRing(t)
	v, err := NewVerifier(ring, VerifierOptions{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := Sign(a, baseReq, t0)
	var ok, replay atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch err := v.Verify(f, baseReq); {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrReplay):
				replay.Add(1)
			default:
				t.Errorf("Verify: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || replay.Load() != 15 {
		t.Errorf("accepted %d, replays %d; want 1 and 15", ok.Load(), replay.Load())
	}
}

func TestNewVerifierOptions(t *testing.T) {
	ring, _, _ := testRing(t)
	if _, err := NewVerifier(nil, VerifierOptions{}); err == nil {
		t.Error("nil ring accepted")
	}
	if _, err := NewVerifier(ring, VerifierOptions{Window: -time.Second}); err == nil {
		t.Error("negative window accepted")
	}
	if _, err := NewVerifier(ring, VerifierOptions{NonceCacheSize: -1}); err == nil {
		t.Error("negative cache size accepted")
	}
	v, err := NewVerifier(ring, VerifierOptions{})
	if err != nil || v.window != DefaultWindow || v.limit != DefaultNonceCacheSize {
		t.Errorf("defaults: %v window %s limit %d", err, v.window, v.limit)
	}
}

func TestSignNonces(t *testing.T) {
	_, a, _ := testRing(t)
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		f, err := Sign(a, baseReq, t0)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Nonce) != 22 || seen[f.Nonce] {
			t.Fatalf("nonce %q: bad length or repeated", f.Nonce)
		}
		seen[f.Nonce] = true
	}
	if _, err := Sign(Key{ID: "x"}, baseReq, t0); err == nil {
		t.Error("Sign with a zero Key succeeded")
	}
}

func BenchmarkVerify(b *testing.B) {
	ring, a, _ := testRing(b)
	c := newClock(t0)
	v, _ := NewVerifier(ring, VerifierOptions{NonceCacheSize: 1 << 30, Now: c.now})
	body := bytes.Repeat([]byte("x"), 64<<10)
	r := Request{Operation: "enroll", RequestID: "r1", Body: body}
	fs := make([]Fields, b.N)
	for i := range fs {
		fs[i], _ = Sign(a, r, t0)
	}
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := v.Verify(fs[i], r); err != nil {
			b.Fatal(err)
		}
	}
}

func TestBody(t *testing.T) {
	got, err := Body(BodyField{"op", "add"}, BodyField{"subject_id", "alice"}, BodyField{"name", ""}, BodyField{"image_0", "a:b\nc"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "op:3:add\nsubject_id:5:alice\nname:0:\nimage_0:5:a:b\nc\n"; string(got) != want {
		t.Errorf("Body = %q, want %q", got, want)
	}
	// Moving bytes between fields changes the encoding.
	a, _ := Body(BodyField{"a", "x\nb:1:y"})
	b, _ := Body(BodyField{"a", "x"}, BodyField{"b", "y"})
	if bytes.Equal(a, b) {
		t.Error("ambiguous encoding")
	}
	for _, bad := range []string{"", "Op", "a:b", "a b", strings.Repeat("n", 65)} {
		if _, err := Body(BodyField{bad, "v"}); !errors.Is(err, ErrMalformed) {
			t.Errorf("Body with name %q: %v", bad, err)
		}
	}
}

func TestFieldsJSON(t *testing.T) {
	_, a, _ := testRing(t)
	f, err := Sign(a, baseReq, t0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"key_id", "ts", "nonce", "sig"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON %s lacks %q (docs/schemas/enroll-request.json names)", b, k)
		}
	}
	var back Fields
	if err := json.Unmarshal(b, &back); err != nil || back != f {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	// A fractional or exponent timestamp does not decode, so one instant has
	// one signed spelling.
	for _, in := range []string{`{"ts":1.5}`, `{"ts":1e9}`, `{"ts":"1790000000"}`} {
		if err := json.Unmarshal([]byte(in), &back); err == nil {
			t.Errorf("%s decoded", in)
		}
	}
}
