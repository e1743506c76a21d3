package auth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary authentication fields and requests to the
// verifier. Seeds are the table cases: a valid request and its mutations.
// Invariants: no panic; every error maps to a reply code; a request is only
// accepted when its signature is the one the ring's key produces for it, and
// never twice.
func FuzzVerify(f *testing.F) {
	ring, a, _ := testRing(f)
	good, err := SignFields(a, baseFields, baseReq)
	if err != nil {
		f.Fatal(err)
	}
	add := func(fl Fields, r Request) {
		f.Add(fl.KeyID, fl.Timestamp, fl.Nonce, fl.Signature, r.Operation, r.RequestID, r.Body)
	}
	add(good, baseReq)
	add(Fields{"admin.2", good.Timestamp, good.Nonce, good.Signature}, baseReq)
	add(Fields{good.KeyID, -good.Timestamp, good.Nonce, good.Signature}, baseReq)
	add(Fields{good.KeyID, 1<<63 - 1, good.Nonce, good.Signature}, baseReq)
	add(Fields{good.KeyID, good.Timestamp, "short", good.Signature}, baseReq)
	add(Fields{good.KeyID, good.Timestamp, good.Nonce, strings.ToUpper(good.Signature)}, baseReq)
	add(good, Request{"enroll\nx", baseReq.RequestID, baseReq.Body})
	add(good, Request{baseReq.Operation, "a/b", nil})
	add(Fields{}, Request{})

	f.Fuzz(func(t *testing.T, keyID string, ts int64, nonce, sig, op, reqID string, body []byte) {
		v, err := NewVerifier(ring, VerifierOptions{Now: func() time.Time { return t0 }})
		if err != nil {
			t.Fatal(err)
		}
		fl := Fields{keyID, ts, nonce, sig}
		r := Request{op, reqID, body}
		err = v.Verify(fl, r)
		if err != nil {
			if Code(err) != CodeUnauthorised {
				t.Fatalf("first Verify error %v has code %q", err, Code(err))
			}
			if v.NonceCacheLen() != 0 {
				t.Fatal("rejected request entered the nonce cache")
			}
			return
		}
		k, ok := ring.Lookup(keyID)
		if !ok {
			t.Fatalf("accepted unknown key %q", keyID)
		}
		want, err := SignFields(k, fl, r)
		if err != nil || want.Signature != sig {
			t.Fatalf("accepted a signature that the key does not produce: %v", err)
		}
		if err := v.Verify(fl, r); !errors.Is(err, ErrReplay) {
			t.Fatalf("second Verify = %v, want ErrReplay", err)
		}
	})
}

// FuzzParseKeyRing feeds arbitrary key files to the parser. Invariants: no
// panic; an accepted ring has valid ids and secrets of allowed size, and
// round-trips through the line format; errors never quote decoded secrets.
func FuzzParseKeyRing(f *testing.F) {
	for _, s := range []string{
		"k1:" + b64A + "\nk2:" + b64B + "\n",
		"# c\n\n k2 : " + b64B + " \r\n",
		`{"k2": "` + b64B + `", "k1": "` + b64A + `"}`,
		"k1:" + b64A + "\nk1:" + b64B,
		`{"k1": 5}`, `{}`, `[1]`, "", ":", "k:", "k 1:" + b64A,
		`{"k1":"` + b64A + `"} x`,
		"ed25519:op1:" + b64A + "\nhmac:k2:" + b64B + "\ned25519-private:op2:" + b64A,
		"ed25519:op1:" + b64B, "rsa:op1:" + b64A, "ed25519:op 1:" + b64A,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseKeyRing(data)
		if err != nil {
			if !errors.Is(err, ErrKeyFile) {
				t.Fatalf("error %v is not ErrKeyFile", err)
			}
			return
		}
		var line strings.Builder
		for _, k := range r.Keys() {
			switch k.Type() {
			case KeyEd25519Public:
				if !validKeyID(k.ID) || len(k.bytes()) != 32 {
					t.Fatalf("accepted invalid key %v (%d bytes)", k, len(k.bytes()))
				}
				line.WriteString(k.PublicLine() + "\n")
				continue
			case KeyEd25519Private:
				if !validKeyID(k.ID) || len(k.bytes()) != 32 {
					t.Fatalf("accepted invalid key %v (%d bytes)", k, len(k.bytes()))
				}
				line.WriteString(k.PrivateLine() + "\n")
				continue
			}
			if !validKeyID(k.ID) || len(k.Secret()) < MinSecretLen || len(k.Secret()) > MaxSecretLen {
				t.Fatalf("accepted invalid key %v (%d bytes)", k, len(k.Secret()))
			}
			line.WriteString(k.ID + ":" + base64.StdEncoding.EncodeToString(k.Secret()) + "\n")
		}
		r2, err := ParseKeyRing([]byte(line.String()))
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if strconv.Quote(strings.Join(r.IDs(), ",")) != strconv.Quote(strings.Join(r2.IDs(), ",")) {
			t.Fatalf("ids %v != %v", r.IDs(), r2.IDs())
		}
		for i, k := range r2.Keys() {
			if k.Type() != r.Keys()[i].Type() || !bytes.Equal(k.bytes(), r.Keys()[i].bytes()) {
				t.Fatalf("secret of %s changed in round trip", k.ID)
			}
		}
	})
}

// FuzzCheckSignatureEd25519 feeds arbitrary fields to CheckSignature with
// a gate's ring (an operator's Ed25519 public key and an HMAC key). Seeds
// are a valid Ed25519 request and its mutations. Invariants: no panic;
// every error is "unauthorised"; an accepted request names a key of the
// ring and carries exactly the signature that key's holder makes; with
// ed25519Only nothing signed with the HMAC key is accepted.
func FuzzCheckSignatureEd25519(f *testing.F) {
	priv, pub := edKeys(f, "ops-1", seedOp)
	hk := testKey(f, "door-1", 0xA1)
	ring, err := NewKeyRing(pub, hk)
	if err != nil {
		f.Fatal(err)
	}
	good, err := SignFields(priv, baseFields, baseReq)
	if err != nil {
		f.Fatal(err)
	}
	hgood, _ := SignFields(hk, baseFields, baseReq)
	add := func(fl Fields, r Request, only bool) {
		f.Add(fl.KeyID, fl.Timestamp, fl.Nonce, fl.Signature, r.Operation, r.RequestID, r.Body, only)
	}
	add(good, baseReq, true)
	add(hgood, baseReq, false)
	add(hgood, baseReq, true)
	add(Fields{"door-1", good.Timestamp, good.Nonce, good.Signature}, baseReq, false)
	add(Fields{"ops-1", good.Timestamp, good.Nonce, good.Signature[:64]}, baseReq, false)
	add(good, Request{baseReq.Operation, baseReq.RequestID, []byte("x")}, true)
	f.Fuzz(func(t *testing.T, keyID string, ts int64, nonce, sig, op, reqID string, body []byte, only bool) {
		fl := Fields{keyID, ts, nonce, sig}
		r := Request{op, reqID, body}
		err := CheckSignature(ring, fl, r, only)
		if err != nil {
			if Code(err) != CodeUnauthorised {
				t.Fatalf("error %v has code %q", err, Code(err))
			}
			return
		}
		var want Fields
		switch keyID {
		case "ops-1":
			want, err = SignFields(priv, fl, r)
		case "door-1":
			if only {
				t.Fatal("an HMAC-signed request accepted with ed25519Only")
			}
			want, err = SignFields(hk, fl, r)
		default:
			t.Fatalf("accepted unknown key %q", keyID)
		}
		if err != nil || want.Signature != sig {
			t.Fatalf("accepted a signature the key does not make: %v", err)
		}
	})
}
