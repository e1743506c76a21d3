package mqtt

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/facegate/facegate/daemon/auth"
)

// TestSecurityDocWorkedExample recomputes docs/security.md's worked example
// with the daemon's code: the body, its hash, the canonical form, the
// signature and the published JSON must appear in the doc exactly, and the
// daemon's verifier must accept that JSON. A doc that drifts from the code
// fails here (issue 15, item 9).
func TestSecurityDocWorkedExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	secret := bytes.Repeat([]byte{7}, 32)
	k, _ := auth.NewKey("ops-laptop", secret)
	r := &EnrollRequest{RequestID: "req-0001", Op: OpDelete, SubjectID: "alice"}
	body := r.CanonicalBody("door-1")
	sum := sha256.Sum256(body)
	f := auth.Fields{KeyID: "ops-laptop", Timestamp: 1790000000, Nonce: "AAAAAAAAAAAAAAAAAAAAAA"}
	areq := auth.Request{Operation: r.Operation(), RequestID: r.RequestID, Body: body}
	canon, err := auth.Canonical(f, areq)
	if err != nil {
		t.Fatal(err)
	}
	sf, err := auth.SignFields(k, f, areq)
	if err != nil {
		t.Fatal(err)
	}
	r.Auth = Auth{KeyID: sf.KeyID, TS: sf.Timestamp, Nonce: sf.Nonce, Sig: sf.Signature}
	js, _ := json.Marshal(r)
	for what, want := range map[string]string{
		"key line":       "ops-laptop:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
		"body":           "```\n" + string(body) + "```",
		"body sha256":    hex.EncodeToString(sum[:]),
		"canonical form": "```\n" + string(canon) + "\n```",
		"signature":      "Signature: `" + sf.Signature + "`",
		"request JSON":   string(js),
	} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("docs/security.md lacks the %s:\n%s", what, want)
		}
	}
	// The doc's JSON, as a client would send it, is accepted.
	got, err := DecodeEnrollRequest(js, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ring, _ := auth.NewKeyRing(k)
	v, _ := auth.NewVerifier(ring, auth.VerifierOptions{Window: 1 << 62})
	if err := VerifyWith(v, "door-1")(t.Context(), got); err != nil {
		t.Fatalf("the doc's request is refused: %v", err)
	}
}
