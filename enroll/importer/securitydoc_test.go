package importer

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/facegate/facegate/daemon/auth"
	"github.com/facegate/facegate/daemon/mqtt"
	"github.com/facegate/facegate/internal/daemontest"
)

// TestSecurityDocOptionalMembers: the body docs/security.md shows for the
// optional enroll members (faces, force: the importer sends force) is the
// one the gate signs and verifies.
func TestSecurityDocOptionalMembers(t *testing.T) {
	doc := daemontest.SecurityDoc(t, 2)
	one := 1
	r := &mqtt.EnrollRequest{RequestID: "req-0002", Op: mqtt.OpAdd, SubjectID: "bob", Name: "Bob",
		Images: []string{base64.StdEncoding.EncodeToString([]byte("photo"))},
		Faces:  []mqtt.FaceChoice{{Image: 0, Index: &one}}, Force: true}
	if body := "```\n" + string(r.CanonicalBody("door-1")) + "```"; !strings.Contains(doc, body) {
		t.Errorf("docs/security.md lacks the body with faces and force:\n%s", body)
	}
	r.Faces = []mqtt.FaceChoice{{Image: 0, Box: &mqtt.Box{X: 10, Y: 20, W: 30, H: 40}}}
	body := string(r.CanonicalBody("door-1"))
	line := body[strings.Index(body, "faces:"):strings.Index(body, "force:")]
	if !strings.Contains(doc, "`"+strings.TrimSuffix(line, "\n")+"`") {
		t.Errorf("docs/security.md lacks the box choice's line %q", line)
	}
}

// TestSecurityDocEd25519WorkedExample recomputes docs/security.md's worked
// example of an Ed25519 operator key with the code the operator's tool
// and the gates run: the key lines, the canonical form, the signature and
// the published JSON must appear in the doc exactly; a gate holding only
// the public line accepts that JSON, and refuses it where the key id
// names an HMAC key or the body was changed.
func TestSecurityDocEd25519WorkedExample(t *testing.T) {
	doc := daemontest.SecurityDoc(t, 2)
	k, err := auth.NewEd25519PrivateKey("ops-ed", bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	r := &mqtt.EnrollRequest{RequestID: "req-0001", Op: mqtt.OpDelete, SubjectID: "alice"}
	ex, err := daemontest.SignExample(k, r, "door-1")
	if err != nil {
		t.Fatal(err)
	}
	sf, areq, js := ex.Signed, ex.Request, ex.JSON
	daemontest.DocHas(t, doc, map[string]string{
		"private key line": "`" + k.PrivateLine() + "`",
		"public key line":  "`" + k.PublicLine() + "`",
		"canonical form":   "```\n" + string(ex.Canonical) + "\n```",
		"signature":        "Signature (Ed25519): `" + sf.Signature + "`",
		"request JSON":     string(js),
	})
	got, err := mqtt.DecodeEnrollRequest(js, mqtt.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	gateRing, err := auth.ParseKeyRing([]byte(k.PublicLine() + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := auth.NewVerifier(gateRing, auth.VerifierOptions{Window: 1 << 62})
	if err := mqtt.VerifyWith(v, "door-1")(t.Context(), got); err != nil {
		t.Fatalf("the doc's request is refused by a gate holding the public line: %v", err)
	}
	if err := mqtt.VerifyWith(v, "door-2")(t.Context(), got); !errors.Is(err, auth.ErrBadSignature) {
		t.Fatalf("the doc's request at another door: %v, want a bad signature", err)
	}
	hmacRing, _ := auth.ParseKeyRing([]byte("ops-ed:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)) + "\n"))
	if err := auth.CheckSignature(hmacRing, auth.Fields{KeyID: sf.KeyID, Timestamp: sf.Timestamp, Nonce: sf.Nonce, Signature: sf.Signature}, areq, false); !errors.Is(err, auth.ErrBadSignature) {
		t.Fatalf("an Ed25519 signature checked against an HMAC key of the same id: %v, want a bad signature", err)
	}
}
