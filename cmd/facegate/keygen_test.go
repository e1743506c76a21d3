package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/facegate/facegate/daemon/auth"
)

// TestOperatorKeygen: the private key file is 0600 and never overwritten,
// facegate enroll signs with it, and a gate holding only the printed
// public line verifies what it signs.
func TestOperatorKeygen(t *testing.T) {
	dir := t.TempDir()
	priv := filepath.Join(dir, "ops-1.key")
	var out strings.Builder
	if err := operatorKeygen("ops-1", priv, &out); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(priv)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600", st.Mode().Perm())
	}
	if err := operatorKeygen("ops-1", priv, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "never overwritten") {
		t.Errorf("second keygen into the same file: %v", err)
	}
	pubLine := strings.TrimSpace(out.String())
	if !strings.HasPrefix(pubLine, "ed25519:ops-1:") {
		t.Fatalf("public line %q", pubLine)
	}
	k, err := signingKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if k.Type() != auth.KeyEd25519Private {
		t.Fatalf("signing key type %v", k.Type())
	}
	gateRing, err := auth.ParseKeyRing([]byte(pubLine + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := auth.Request{Operation: "enroll/delete", RequestID: "req-1", Body: []byte("device_id:6:door-1\n")}
	f, err := auth.Sign(k, r, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.CheckSignature(gateRing, f, r, true); err != nil {
		t.Fatalf("a gate with the public line refuses the operator's signature: %v", err)
	}
	// The public line is no signing key.
	pubFile := filepath.Join(dir, "enroll-keys")
	if err := os.WriteFile(pubFile, []byte(pubLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := signingKey(pubFile); err == nil || !strings.Contains(err.Error(), "public key") {
		t.Errorf("signingKey(public line) = %v", err)
	}
	if err := os.Chmod(priv, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := signingKey(priv); err == nil {
		t.Errorf("a private key readable by others was accepted")
	}
	if err := operatorKeygen("bad id", filepath.Join(dir, "x"), &strings.Builder{}); err == nil {
		t.Errorf("bad key id accepted")
	}
}
