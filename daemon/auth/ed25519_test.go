package auth

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// seedOp is a fixed operator seed, so signatures are reproducible
// (Ed25519 is deterministic).
var seedOp = bytes.Repeat([]byte{0x0E}, 32)

func edKeys(t testing.TB, id string, seed []byte) (priv, pub Key) {
	t.Helper()
	priv, err := NewEd25519PrivateKey(id, seed)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := priv.Public()
	if !ok || pub.Type() != KeyEd25519Public {
		t.Fatalf("Public() = %v, %v", pub, ok)
	}
	return priv, pub
}

func TestEd25519KeyLines(t *testing.T) {
	priv, pub := edKeys(t, "ops-1", seedOp)
	wantPub := base64.StdEncoding.EncodeToString(ed25519.NewKeyFromSeed(seedOp).Public().(ed25519.PublicKey))
	if got, want := pub.PublicLine(), "ed25519:ops-1:"+wantPub; got != want {
		t.Errorf("PublicLine = %q, want %q", got, want)
	}
	if priv.PublicLine() != pub.PublicLine() {
		t.Errorf("private key's public line %q differs from %q", priv.PublicLine(), pub.PublicLine())
	}
	if pub.PrivateLine() != "" {
		t.Errorf("a public key has a private line")
	}
	if pub.Secret() != nil || priv.Secret() != nil {
		t.Errorf("Secret() of an Ed25519 key must be nil: it is no symmetric key")
	}
	hk := testKey(t, "h1", 0xA1)
	if hk.PublicLine() != "" || hk.PrivateLine() != "" || hk.PublicKey() != nil {
		t.Errorf("an HMAC key has no Ed25519 lines")
	}
	if _, ok := hk.Public(); ok {
		t.Errorf("an HMAC key has no public half")
	}

	ring, err := ParseKeyRing([]byte("# operators\n" + pub.PublicLine() + "\nhmac:legacy:" + b64A + "\nold:" + b64B + "\n" + "ed25519-private:ops-2:" + b64A + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(ring.IDs()); got != "[ops-1 legacy old ops-2]" {
		t.Errorf("ids = %s", got)
	}
	for id, want := range map[string]KeyType{"ops-1": KeyEd25519Public, "legacy": KeyHMAC, "old": KeyHMAC, "ops-2": KeyEd25519Private} {
		if k, _ := ring.Lookup(id); k.Type() != want {
			t.Errorf("%s: type %v, want %v", id, k.Type(), want)
		}
	}
	if got := fmt.Sprint(ring.IDsOf(KeyHMAC)); got != "[legacy old]" {
		t.Errorf("IDsOf(hmac) = %s", got)
	}
	if k, _ := ring.Lookup("ops-1"); !k.PublicKey().Equal(pub.PublicKey()) {
		t.Errorf("parsed public key differs")
	}
	// The private line round-trips.
	r2, err := ParseKeyRing([]byte(priv.PrivateLine()))
	if err != nil {
		t.Fatal(err)
	}
	if k := r2.Current(); k.Type() != KeyEd25519Private || !k.PublicKey().Equal(pub.PublicKey()) {
		t.Errorf("private line round trip: %v", k)
	}

	for name, in := range map[string]string{
		"public key too short":   "ed25519:ops-1:" + base64.StdEncoding.EncodeToString(make([]byte, 31)),
		"public key too long":    "ed25519:ops-1:" + b64B,
		"seed too long":          "ed25519-private:ops-1:" + b64B,
		"unknown type":           "rsa:ops-1:" + b64A,
		"bad id":                 "ed25519:ops 1:" + b64A,
		"bad base64":             "ed25519:ops-1:" + b64A[:5] + "!" + b64A[6:],
		"duplicate across types": "ed25519:k1:" + b64A + "\nk1:" + b64B,
	} {
		if _, err := ParseKeyRing([]byte(in)); !errors.Is(err, ErrKeyFile) {
			t.Errorf("%s: ParseKeyRing = %v, want ErrKeyFile", name, err)
		}
	}
}

func TestEd25519SecretsNeverPrinted(t *testing.T) {
	priv, pub := edKeys(t, "ops-1", seedOp)
	ring, _ := NewKeyRing(priv)
	var out strings.Builder
	for _, v := range []any{priv, &priv, ring, []Key{priv, pub}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
	}
	slog.New(slog.NewJSONHandler(&out, nil)).Info("loaded", "key", priv, "ring", ring)
	s := out.String()
	assertNoSecret(t, s, seedOp)
	full := ed25519.NewKeyFromSeed(seedOp)
	assertNoSecret(t, s, full)
	if !strings.Contains(s, "ed25519-private") {
		t.Errorf("the key type should show:\n%s", s)
	}
}

func TestEd25519SignVerify(t *testing.T) {
	priv, pub := edKeys(t, "ops-1", seedOp)
	_, otherPub := edKeys(t, "ops-1", bytes.Repeat([]byte{0x0F}, 32)) // same id, another key
	hk := testKey(t, "door-1", 0xA1)
	gateRing, err := NewKeyRing(pub, hk) // what a gate holds: public keys (and a legacy HMAC key)
	if err != nil {
		t.Fatal(err)
	}
	good, err := SignFields(priv, baseFields, baseReq)
	if err != nil {
		t.Fatal(err)
	}
	if len(good.Signature) != Ed25519SignatureHexLen || good.KeyID != "ops-1" {
		t.Fatalf("signature %q for key %q", good.Signature, good.KeyID)
	}
	if again, _ := SignFields(priv, baseFields, baseReq); again.Signature != good.Signature {
		t.Errorf("Ed25519 signatures are deterministic")
	}
	if _, err := SignFields(pub, baseFields, baseReq); !errors.Is(err, ErrPublicKey) {
		t.Errorf("signing with a public key: %v, want ErrPublicKey", err)
	}
	hmacSigned, _ := SignFields(hk, baseFields, baseReq)
	mut := func(f func(*Fields)) Fields { g := good; f(&g); return g }
	flip := func(s string) string { // one bit of the signature's last byte
		b := []byte(s)
		if b[len(b)-1] == '0' {
			b[len(b)-1] = '1'
		} else {
			b[len(b)-1] = '0'
		}
		return string(b)
	}
	tests := []struct {
		name        string
		ring        *KeyRing
		f           Fields
		r           Request
		ed25519Only bool
		want        error
	}{
		{"valid", gateRing, good, baseReq, false, nil},
		{"valid, Ed25519 only", gateRing, good, baseReq, true, nil},
		{"valid with the private key in the ring", mustRing(t, priv), good, baseReq, true, nil},
		{"HMAC still valid", gateRing, hmacSigned, baseReq, false, nil},
		{"HMAC refused when Ed25519 only", gateRing, hmacSigned, baseReq, true, ErrHMACRefused},
		{"wrong key (same id)", mustRing(t, otherPub), good, baseReq, false, ErrBadSignature},
		{"tampered body", gateRing, good, Request{baseReq.Operation, baseReq.RequestID, []byte(`{"id":"mallory"}`)}, false, ErrBadSignature},
		{"tampered operation", gateRing, good, Request{"enroll/delete", baseReq.RequestID, baseReq.Body}, false, ErrBadSignature},
		{"tampered request id", gateRing, good, Request{baseReq.Operation, "req-0002", baseReq.Body}, false, ErrBadSignature},
		{"tampered timestamp", gateRing, mut(func(f *Fields) { f.Timestamp++ }), baseReq, false, ErrBadSignature},
		{"tampered nonce", gateRing, mut(func(f *Fields) { f.Nonce = "BBBBBBBBBBBBBBBBBBBBBB" }), baseReq, false, ErrBadSignature},
		{"flipped signature bit", gateRing, mut(func(f *Fields) { f.Signature = flip(f.Signature) }), baseReq, false, ErrBadSignature},
		{"unknown key id", gateRing, mut(func(f *Fields) { f.KeyID = "ops-9" }), baseReq, false, ErrUnknownKey},
		{"HMAC-length signature for an Ed25519 key", gateRing, mut(func(f *Fields) { f.Signature = f.Signature[:64] }), baseReq, false, ErrBadSignature},
		// A gate holding only the public key cannot pass it off as an
		// HMAC secret: the ring's key type, not the request, picks the
		// scheme.
		{"public key used as an HMAC secret", gateRing, func() Fields {
			fake, err := NewKey("ops-1", pub.PublicKey())
			if err != nil {
				t.Fatal(err)
			}
			f, _ := SignFields(fake, baseFields, baseReq)
			return f
		}(), baseReq, false, ErrBadSignature},
		{"Ed25519-length signature for an HMAC key", gateRing, mut(func(f *Fields) { f.KeyID = "door-1" }), baseReq, false, ErrBadSignature},
		{"odd length", gateRing, mut(func(f *Fields) { f.Signature = f.Signature[:127] }), baseReq, false, ErrMalformed},
		{"uppercase", gateRing, mut(func(f *Fields) { f.Signature = strings.ToUpper(f.Signature) }), baseReq, false, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckSignature(tt.ring, tt.f, tt.r, tt.ed25519Only)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("CheckSignature = %v, want %v", err, tt.want)
			}
			if err != nil && Code(err) != CodeUnauthorised {
				t.Errorf("Code = %q, want unauthorised", Code(err))
			}
			if tt.ed25519Only {
				return
			}
			// The Verifier (window, nonces) agrees on the signature.
			v, err := NewVerifier(tt.ring, VerifierOptions{Now: func() time.Time { return t0 }})
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Verify(tt.f, tt.r); tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	// Sign makes a fresh nonce and verifies.
	f, err := Sign(priv, baseReq, t0)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := NewVerifier(gateRing, VerifierOptions{Now: func() time.Time { return t0 }})
	if err := v.Verify(f, baseReq); err != nil {
		t.Fatalf("Verify(Sign) = %v", err)
	}
	if err := v.Verify(f, baseReq); !errors.Is(err, ErrReplay) {
		t.Fatalf("replayed Ed25519 request: %v, want ErrReplay", err)
	}
}

func TestGenerateEd25519(t *testing.T) {
	a, err := GenerateEd25519("ops-1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateEd25519("ops-1")
	if a.PublicKey().Equal(b.PublicKey()) {
		t.Fatal("two generated keys are equal")
	}
	if a.Type() != KeyEd25519Private {
		t.Fatalf("type %v", a.Type())
	}
	if _, err := GenerateEd25519("bad id"); err == nil {
		t.Fatal("bad id accepted")
	}
}

func mustRing(t *testing.T, keys ...Key) *KeyRing {
	t.Helper()
	r, err := NewKeyRing(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func BenchmarkCheckSignature(b *testing.B) {
	priv, pub := edKeys(b, "ops-1", seedOp)
	hk := testKey(b, "door-1", 0xA1)
	ring, _ := NewKeyRing(pub, hk)
	for _, k := range []Key{priv, hk} {
		f, _ := SignFields(k, baseFields, baseReq)
		b.Run(map[KeyType]string{KeyHMAC: "hmac", KeyEd25519Private: "ed25519"}[k.Type()], func(b *testing.B) {
			for b.Loop() {
				if err := CheckSignature(ring, f, baseReq, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
