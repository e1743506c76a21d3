package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var (
	secA = bytes.Repeat([]byte{0x5A}, 32)
	secB = []byte("0123456789abcdef0123456789abcdef-longer")
	b64A = base64.StdEncoding.EncodeToString(secA)
	b64B = base64.StdEncoding.EncodeToString(secB)
)

func TestParseKeyRing(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		ids     []string
		secrets [][]byte
		wantErr bool
	}{
		{"lines", "k1:" + b64A + "\nk2:" + b64B + "\n", []string{"k1", "k2"}, [][]byte{secA, secB}, false},
		{"comments and blanks", "# gallery keys\n\n  k2 : " + b64B + "  \r\n# old\nk1:" + b64A, []string{"k2", "k1"}, [][]byte{secB, secA}, false},
		{"unpadded", "k1:" + strings.TrimRight(b64B, "="), []string{"k1"}, [][]byte{secB}, false},
		{"json", `{"k2": "` + b64B + `", "k1": "` + b64A + `"}`, []string{"k2", "k1"}, [][]byte{secB, secA}, false},
		{"json spaced", "\n  {\n\"k1\":\"" + b64A + "\"\n}\n", []string{"k1"}, [][]byte{secA}, false},
		{"empty", "", nil, nil, true},
		{"only comments", "# nothing\n", nil, nil, true},
		{"no colon", b64A, nil, nil, true},
		{"short secret", "k1:" + base64.StdEncoding.EncodeToString(make([]byte, 31)), nil, nil, true},
		{"bad base64", "k1:" + b64A[:10] + "!" + b64A[11:], nil, nil, true},
		{"url base64", "k1:" + base64.URLEncoding.EncodeToString(append([]byte{0xff, 0xfe}, secA...)), nil, nil, true},
		{"bad id", "k 1:" + b64A, nil, nil, true},
		{"empty id", ":" + b64A, nil, nil, true},
		{"duplicate", "k1:" + b64A + "\nk1:" + b64B, nil, nil, true},
		{"json duplicate", `{"k1":"` + b64A + `","k1":"` + b64B + `"}`, nil, nil, true},
		{"json number", `{"k1": 5}`, nil, nil, true},
		{"json empty", `{}`, nil, nil, true},
		{"json array", `[{"k1":"` + b64A + `"}]`, nil, nil, true},
		{"json trailing", `{"k1":"` + b64A + `"} x`, nil, nil, true},
		{"json unterminated", `{"k1":"` + b64A + `"`, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseKeyRing([]byte(tt.in))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseKeyRing accepted %q", tt.in)
				}
				if !errors.Is(err, ErrKeyFile) {
					t.Errorf("error %v is not ErrKeyFile", err)
				}
				assertNoSecret(t, err.Error(), secA, secB)
				return
			}
			if err != nil {
				t.Fatalf("ParseKeyRing: %v", err)
			}
			if got := r.IDs(); fmt.Sprint(got) != fmt.Sprint(tt.ids) {
				t.Errorf("ids = %v, want %v", got, tt.ids)
			}
			for i, k := range r.Keys() {
				if !bytes.Equal(k.Secret(), tt.secrets[i]) {
					t.Errorf("key %s: wrong secret", k.ID)
				}
			}
			if r.Current().ID != tt.ids[0] {
				t.Errorf("Current = %s, want %s", r.Current().ID, tt.ids[0])
			}
		})
	}
}

func writeKeyFile(t *testing.T, dir string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, "keys")
	if err := os.WriteFile(p, []byte("k1:"+b64A+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadKeyRing(t *testing.T) {
	t.Setenv(EnvCredentialsDirectory, "")
	tests := []struct {
		mode    os.FileMode
		wantErr error
	}{
		{0o600, nil},
		{0o400, nil},
		{0o640, ErrInsecureFile},
		{0o604, ErrInsecureFile},
		{0o644, ErrInsecureFile},
		{0o620, ErrInsecureFile},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%04o", tt.mode), func(t *testing.T) {
			p := writeKeyFile(t, t.TempDir(), tt.mode)
			r, err := LoadKeyRing(p)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("LoadKeyRing = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), "chmod 600") || !strings.Contains(err.Error(), p) {
					t.Errorf("message %q should name the file and the fix", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadKeyRing: %v", err)
			}
			if k, ok := r.Lookup("k1"); !ok || !bytes.Equal(k.Secret(), secA) {
				t.Error("key k1 not loaded")
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		if _, err := LoadKeyRing(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		d := t.TempDir()
		os.Chmod(d, 0o700)
		if _, err := LoadKeyRing(d); !errors.Is(err, ErrKeyFile) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestLoadKeyRingFromCredential(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvCredentialsDirectory, dir)
	p := writeKeyFile(t, dir, 0o644) // systemd guards the directory itself
	got, err := CredentialPath("keys")
	if err != nil || got != p {
		t.Fatalf("CredentialPath = %q, %v; want %q", got, err, p)
	}
	if _, err := LoadKeyRing(got); err != nil {
		t.Fatalf("credential with mode 0644: %v", err)
	}
	// A world-readable file elsewhere is still refused.
	other := writeKeyFile(t, t.TempDir(), 0o644)
	if _, err := LoadKeyRing(other); !errors.Is(err, ErrInsecureFile) {
		t.Errorf("outside the credentials dir: %v", err)
	}
	for _, bad := range []string{"", ".", "..", "a/b", "../keys"} {
		if _, err := CredentialPath(bad); err == nil {
			t.Errorf("CredentialPath(%q) accepted", bad)
		}
	}
	t.Setenv(EnvCredentialsDirectory, "")
	if _, err := CredentialPath("keys"); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("without systemd: %v", err)
	}
}

// assertNoSecret fails when s contains any common rendering of a secret.
func assertNoSecret(t *testing.T, s string, secrets ...[]byte) {
	t.Helper()
	for _, sec := range secrets {
		for _, form := range []string{
			string(sec),
			base64.StdEncoding.EncodeToString(sec),
			base64.RawStdEncoding.EncodeToString(sec),
			hex.EncodeToString(sec),
			strings.Trim(fmt.Sprint(sec), "[]"),
			fmt.Sprintf("%q", sec)[1:20],
			fmt.Sprintf("%#v", sec)[8:30],
		} {
			if strings.Contains(s, form) {
				t.Errorf("output contains the secret (as %q):\n%s", form, s)
			}
		}
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	k, err := NewKey("k1", secA)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := NewKey("k2", secB)
	ring, _ := NewKeyRing(k, kb)
	type exported struct{ K Key }
	type hidden struct{ k Key }
	type holder struct {
		Ring *KeyRing
		keys []Key
	}
	var out strings.Builder
	for _, v := range []any{k, &k, ring, *ring, exported{k}, hidden{k}, holder{ring, []Key{k, kb}}, []Key{k, kb}, map[string]Key{"a": k}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
	}
	fmt.Fprintln(&out, k, ring)
	for _, h := range []slog.Handler{slog.NewTextHandler(&out, nil), slog.NewJSONHandler(&out, nil)} {
		l := slog.New(h)
		l.Info("loaded", "key", k, "ring", ring, "keys", []Key{k, kb}, "exported", exported{k})
		l.Info("loaded", slog.Any("key", &k), slog.Group("g", "k", kb))
	}
	s := out.String()
	assertNoSecret(t, s, secA, secB)
	if !strings.Contains(s, "k1") || !strings.Contains(s, redacted) {
		t.Errorf("expected the key id and %s in output:\n%s", redacted, s)
	}
}
