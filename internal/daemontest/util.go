package daemontest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facegate/facegate/daemon/auth"
	"github.com/facegate/facegate/internal/mqtttest"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago
// (mqtttest.FreePort).
func FreePort(t testing.TB) int {
	t.Helper()
	return mqtttest.FreePort(t)
}

// RandomHex returns n random bytes in hex (ids, nonces of test requests).
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// EnvWithout returns the process's environment less the variables whose
// name starts with prefix (FACEGATE_: the test sets every one it means).
func EnvWithout(prefix string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, prefix) {
			out = append(out, kv)
		}
	}
	return out
}

// ModelsDir is the exported models' folder as an absolute path: explicit
// when set, else FACEGATE_MODELS_DIR, else def.
func ModelsDir(explicit, def string) string {
	m := explicit
	if m == "" {
		m = os.Getenv("FACEGATE_MODELS_DIR")
	}
	if m == "" {
		m = def
	}
	abs, err := filepath.Abs(m)
	if err != nil {
		return m
	}
	return abs
}

// Tail returns the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}

// WriteKeys writes an enrolment key file holding one random HMAC key
// "ops" and a gallery key file holding one random key "g1", and returns
// the operator key.
func WriteKeys(t testing.TB, enrollKeys, galleryKey string) auth.Key {
	t.Helper()
	secret, gs := make([]byte, 32), make([]byte, 32)
	_, _ = rand.Read(secret)
	_, _ = rand.Read(gs)
	if err := os.WriteFile(enrollKeys, []byte("ops:"+base64.StdEncoding.EncodeToString(secret)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(galleryKey, []byte("g1:"+base64.StdEncoding.EncodeToString(gs)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := auth.NewKey("ops", secret)
	if err != nil {
		t.Fatal(fmt.Errorf("operator key: %w", err))
	}
	return k
}
