package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/facegate/facegate/daemon/auth"
	"github.com/facegate/facegate/site"
)

// siteChange is a change authorised by a request signed with k, as the
// accepting gate would put it on the stream.
func siteChange(t *testing.T, k auth.Key) *site.Change {
	t.Helper()
	body, err := auth.Body(auth.BodyField{Name: "device_id", Value: "gate-a"}, auth.BodyField{Name: "request_id", Value: "req-1"},
		auth.BodyField{Name: "op", Value: "delete"}, auth.BodyField{Name: "subject_id", Value: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	r := auth.Request{Operation: "enroll/delete", RequestID: "req-1", Body: body}
	f, err := auth.Sign(k, r, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &site.Change{ID: site.ChangeID(f.KeyID, f.Nonce), Op: site.OpRemove, SubjectID: "alice", Origin: "gate-a",
		Request: site.Request{KeyID: f.KeyID, TS: f.Timestamp, Nonce: f.Nonce, Sig: f.Signature, Operation: r.Operation, RequestID: r.RequestID, Body: body}}
}

func TestSiteVerifier(t *testing.T) {
	op, err := auth.GenerateEd25519("ops-1")
	if err != nil {
		t.Fatal(err)
	}
	opPub, _ := op.Public()
	other, _ := auth.GenerateEd25519("ops-1") // same id, not the operator's key
	legacy, _ := auth.NewKey("legacy", bytes.Repeat([]byte{7}, 32))
	ring, err := auth.NewKeyRing(opPub, legacy) // public keys only, plus an HMAC key
	if err != nil {
		t.Fatal(err)
	}
	tampered := siteChange(t, op)
	tampered.Request.Body = bytes.Replace(tampered.Request.Body, []byte("alice"), []byte("mallo"), 1)
	tests := []struct {
		name        string
		c           *site.Change
		ed25519Only bool
		want        error
		reason      string
	}{
		{"operator's Ed25519 key", siteChange(t, op), true, nil, ""},
		{"operator's Ed25519 key, any", siteChange(t, op), false, nil, ""},
		{"HMAC key accepted with any", siteChange(t, legacy), false, nil, ""},
		{"HMAC key refused with ed25519", siteChange(t, legacy), true, auth.ErrHMACRefused, "hmac_refused"},
		{"wrong Ed25519 key", siteChange(t, other), true, auth.ErrBadSignature, "unsigned"},
		{"tampered body", tampered, true, auth.ErrBadSignature, "unsigned"},
		{"unknown key id", siteChange(t, func() auth.Key { k, _ := auth.GenerateEd25519("ops-9"); return k }()), true, auth.ErrUnknownKey, "unsigned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := SiteVerifier(ring, tt.ed25519Only).Verify(tt.c)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			// As the replicator reports it.
			wrapped := fmt.Errorf("%w: change %s: %w", site.ErrUnsigned, tt.c.ID, err)
			if got := refusalReason(wrapped); got != tt.reason {
				t.Errorf("reason %q, want %q", got, tt.reason)
			}
		})
	}
}

func TestCheckSiteOperatorKeys(t *testing.T) {
	op, _ := auth.GenerateEd25519("ops-1")
	pub, _ := op.Public()
	legacy, _ := auth.NewKey("legacy", bytes.Repeat([]byte{7}, 32))
	ring := func(ks ...auth.Key) *auth.KeyRing {
		r, err := auth.NewKeyRing(ks...)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tt := range []struct {
		name        string
		ring        *auth.KeyRing
		ed25519Only bool
		until       map[string]uint64
		want        string
	}{
		{"public keys only", ring(pub), true, nil, ""},
		{"HMAC key in an Ed25519 site", ring(pub, legacy), true, nil, "HMAC keys [legacy]"},
		{"retired HMAC key in an Ed25519 site", ring(pub, legacy), true, map[string]uint64{"legacy": 42}, ""},
		{"private key on a gate", ring(op), true, nil, "private keys [ops-1]"},
		{"HMAC key with any", ring(legacy, pub), false, nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := checkSiteOperatorKeys(tt.ring, tt.ed25519Only, tt.until)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("checkSiteOperatorKeys = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestSiteVerifierRetiredKeys: a retired key's changes are applied up to
// its last stream sequence (an HMAC key's too, in an Ed25519-only site)
// and refused after it, with reason key_retired, even with a valid
// signature.
func TestSiteVerifierRetiredKeys(t *testing.T) {
	old, _ := auth.GenerateEd25519("ops-old")
	oldPub, _ := old.Public()
	legacy, _ := auth.NewKey("legacy", bytes.Repeat([]byte{7}, 32))
	cur, _ := auth.GenerateEd25519("ops-new")
	curPub, _ := cur.Public()
	ring, _ := auth.NewKeyRing(curPub, oldPub, legacy)
	v := NewSiteVerifier(ring, true, map[string]uint64{"ops-old": 100, "legacy": 50})
	for _, tt := range []struct {
		name   string
		key    auth.Key
		seq    uint64
		reason string // "" accepted
	}{
		{"current key", cur, 1000, ""},
		{"retired key, before its last sequence", old, 99, ""},
		{"retired key, at its last sequence", old, 100, ""},
		{"retired key, after", old, 101, "key_retired"},
		{"retired HMAC key, before", legacy, 50, ""},
		{"retired HMAC key, after", legacy, 51, "key_retired"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := siteChange(t, tt.key)
			err := v.VerifyAt(tt.seq, c)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("VerifyAt(%d) = %v", tt.seq, err)
				}
				return
			}
			if !errors.Is(err, ErrKeyRetired) {
				t.Fatalf("VerifyAt(%d) = %v, want ErrKeyRetired", tt.seq, err)
			}
			if got := refusalReason(fmt.Errorf("%w: %w", site.ErrUnsigned, err)); got != tt.reason {
				t.Errorf("reason %q, want %q", got, tt.reason)
			}
		})
	}
	if err := v.Verify(siteChange(t, old)); !errors.Is(err, ErrKeyRetired) {
		t.Errorf("Verify without a sequence of a retired key's change: %v", err)
	}
	// A tampered change of a retired key is still a bad signature.
	c := siteChange(t, old)
	c.Request.Body = append(c.Request.Body, 'x')
	if err := v.VerifyAt(1, c); !errors.Is(err, auth.ErrBadSignature) {
		t.Errorf("tampered: %v", err)
	}
}

func TestSiteOperatorKeysConfig(t *testing.T) {
	base := SiteConfig{SiteNATSURLs: []string{"nats://127.0.0.1:4222"}, SiteGateKey: "k", SiteGateKeys: "ks", SiteKey: "s", SiteReplicas: 3, SiteOutboxMaxBytes: 1 << 26}
	for v, ok := range map[string]bool{"ed25519": true, "any": true, "hmac": false, "": false} {
		c := base
		c.SiteOperatorKeys = v
		var errs []string
		c.validate("gate-a", func(name, format string, args ...any) { errs = append(errs, name) })
		if got := len(errs) == 0; got != ok {
			t.Errorf("SITE_OPERATOR_KEYS=%q: problems %v, want ok=%v", v, errs, ok)
		}
		if ok && c.Ed25519Only() != (v == "ed25519") {
			t.Errorf("SITE_OPERATOR_KEYS=%q: Ed25519Only = %v", v, c.Ed25519Only())
		}
	}
	base.SiteOperatorKeys = "ed25519"
	for _, tc := range []struct {
		in   []string
		want map[string]uint64
	}{
		{nil, map[string]uint64{}},
		{[]string{"ops-old=100", "legacy=7"}, map[string]uint64{"ops-old": 100, "legacy": 7}},
		{[]string{"ops-old"}, nil},
		{[]string{"ops-old=0"}, nil},
		{[]string{"ops-old=-1"}, nil},
		{[]string{"ops old=5"}, nil},
		{[]string{"a=1", "a=2"}, nil},
	} {
		c := base
		c.SiteOperatorKeysUntil = tc.in
		got, err := c.OperatorKeysUntil()
		var errs []string
		c.validate("gate-a", func(name, format string, args ...any) { errs = append(errs, name) })
		if tc.want == nil {
			if err == nil || len(errs) != 1 || errs[0] != "SITE_OPERATOR_KEYS_UNTIL" {
				t.Errorf("%q: accepted (%v, problems %v)", tc.in, got, errs)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) || len(errs) != 0 {
			t.Errorf("%q: %v, %v, problems %v; want %v", tc.in, got, err, errs, tc.want)
		}
	}
}

// TestPreflightSiteOperatorKeys: `facegate config` names an HMAC key in
// the enrollment ring of a gate in an Ed25519-only site, and accepts the
// operators' public lines.
func TestPreflightSiteOperatorKeys(t *testing.T) {
	env, dir := preflightEnv(t)
	env["FACEGATE_SITE_NATS_URLS"] = "nats://127.0.0.1:4222"
	err := Preflight(loadWith(t, env))
	var se *StartupError
	if !errors.As(err, &se) || !problemNamed(se, "ENROLL_KEYS", "HMAC keys [k1]") {
		t.Fatalf("HMAC key in an Ed25519 site: %v", err)
	}
	op, _ := auth.GenerateEd25519("ops-1")
	pub := filepath.Join(dir, "enroll-keys-ed25519")
	if err := os.WriteFile(pub, []byte(op.PublicLine()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env["FACEGATE_ENROLL_KEYS"] = pub
	if err := Preflight(loadWith(t, env)); errors.As(err, &se) && problemNamed(se, "ENROLL_KEYS", "") {
		t.Fatalf("public operator keys refused: %v", err)
	}
	env["FACEGATE_ENROLL_KEYS"] = filepath.Join(dir, "enroll-keys")
	env["FACEGATE_SITE_OPERATOR_KEYS"] = "any"
	if err := Preflight(loadWith(t, env)); errors.As(err, &se) && problemNamed(se, "ENROLL_KEYS", "") {
		t.Fatalf("HMAC key with FACEGATE_SITE_OPERATOR_KEYS=any refused: %v", err)
	}
}

func problemNamed(se *StartupError, v, what string) bool {
	for _, p := range se.Problems {
		if p.Var == v && strings.Contains(p.What, what) {
			return true
		}
	}
	return false
}
