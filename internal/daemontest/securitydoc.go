package daemontest

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/facegate/facegate/daemon/auth"
	"github.com/facegate/facegate/daemon/mqtt"
)

// The worked examples of docs/security.md sign at this time with this
// nonce, so that their signatures are fixed.
const (
	ExampleTimestamp = 1790000000
	ExampleNonce     = "AAAAAAAAAAAAAAAAAAAAAA"
)

// Example is an enrolment request signed as docs/security.md's worked
// examples show it.
type Example struct {
	Body      []byte       // the canonical body
	Request   auth.Request // what is signed
	Canonical []byte       // the canonical form
	Signed    auth.Fields  // the signature fields
	JSON      []byte       // the published request, r with its auth member
}

// SignExample signs r for device with k at ExampleTimestamp with
// ExampleNonce, sets r.Auth and returns every step.
func SignExample(k auth.Key, r *mqtt.EnrollRequest, device string) (Example, error) {
	var e Example
	e.Body = r.CanonicalBody(device)
	f := auth.Fields{KeyID: k.ID, Timestamp: ExampleTimestamp, Nonce: ExampleNonce}
	e.Request = auth.Request{Operation: r.Operation(), RequestID: r.RequestID, Body: e.Body}
	var err error
	if e.Canonical, err = auth.Canonical(f, e.Request); err != nil {
		return e, fmt.Errorf("canonical form: %w", err)
	}
	if e.Signed, err = auth.SignFields(k, f, e.Request); err != nil {
		return e, fmt.Errorf("sign: %w", err)
	}
	r.Auth = mqtt.Auth{KeyID: e.Signed.KeyID, TS: e.Signed.Timestamp, Nonce: e.Signed.Nonce, Sig: e.Signed.Signature}
	if e.JSON, err = json.Marshal(r); err != nil {
		return e, fmt.Errorf("marshal: %w", err)
	}
	return e, nil
}

// SecurityDoc reads docs/security.md from the package at depth levels
// below the repository's root.
func SecurityDoc(t testing.TB, depth int) string {
	t.Helper()
	path := strings.Repeat("../", depth) + "docs/security.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// DocHas fails the test for each entry of want (what -> text) that the
// doc does not hold exactly.
func DocHas(t testing.TB, doc string, want map[string]string) {
	t.Helper()
	for what, text := range want {
		if !strings.Contains(doc, text) {
			t.Errorf("docs/security.md lacks the %s:\n%s", what, text)
		}
	}
}
