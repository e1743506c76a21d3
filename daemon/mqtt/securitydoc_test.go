package mqtt_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/facegate/facegate/daemon/auth"
	"github.com/facegate/facegate/daemon/mqtt"
	"github.com/facegate/facegate/internal/daemontest"
)

// TestSecurityDocWorkedExample recomputes docs/security.md's worked example
// with the daemon's code: the body, its hash, the canonical form, the
// signature and the published JSON must appear in the doc exactly, and the
// daemon's verifier must accept that JSON. A doc that drifts from the code
// fails here (issue 15, item 9).
func TestSecurityDocWorkedExample(t *testing.T) {
	doc := daemontest.SecurityDoc(t, 2)
	secret := bytes.Repeat([]byte{7}, 32)
	k, _ := auth.NewKey("ops-laptop", secret)
	r := &mqtt.EnrollRequest{RequestID: "req-0001", Op: mqtt.OpDelete, SubjectID: "alice"}
	ex, err := daemontest.SignExample(k, r, "door-1")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(ex.Body)
	daemontest.DocHas(t, doc, map[string]string{
		"key line":       "ops-laptop:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
		"body":           "```\n" + string(ex.Body) + "```",
		"body sha256":    hex.EncodeToString(sum[:]),
		"canonical form": "```\n" + string(ex.Canonical) + "\n```",
		"signature":      "Signature: `" + ex.Signed.Signature + "`",
		"request JSON":   string(ex.JSON),
	})
	// The doc's JSON, as a client would send it, is accepted.
	got, err := mqtt.DecodeEnrollRequest(ex.JSON, mqtt.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ring, _ := auth.NewKeyRing(k)
	v, _ := auth.NewVerifier(ring, auth.VerifierOptions{Window: 1 << 62})
	if err := mqtt.VerifyWith(v, "door-1")(t.Context(), got); err != nil {
		t.Fatalf("the doc's request is refused: %v", err)
	}
}
