package site

import (
	"bytes"
	"crypto/x509"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/facegate/facegate/internal/testpki"
	"github.com/nats-io/nats.go"
)

// Issue 18: the site connection with TLS and passwords from files, as
// docs/site.md ("Security on the NATS side") configures it. A client with
// the right CA and password connects; a wrong password, an unknown CA or a
// plain-text client is refused with an error that names the reason, both
// from the connection (LastError) and in the client's log.

// syncBuf is a log sink the NATS client's goroutines write to.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServerTLSAndPasswords(t *testing.T) {
	dir := t.TempDir()
	pki := testpki.New(t)
	cert, key := pki.Issue(t, "nats-1", x509.ExtKeyUsageServerAuth)
	caFile := writeFile(t, dir, "ca.pem", pki.CAPEM)
	gatePW := writeFile(t, dir, "gate-1.pw", []byte("correct horse battery staple\n"))
	port := freePorts(t, 1)[0]
	s, err := StartServer(ServerConfig{
		Name: "tls-1", Port: port, StoreDir: t.TempDir(),
		CertFile: writeFile(t, dir, "cert.pem", cert), KeyFile: writeFile(t, dir, "key.pem", key), CAFile: caFile,
		Users: []User{{Name: "gate-1", PasswordFile: gatePW, Gate: "gate-1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	tlsURL := "tls://127.0.0.1:" + strconv.Itoa(port)

	connect := func(t *testing.T, cfg ClientConfig) (*nats.Conn, *syncBuf) {
		t.Helper()
		logs := &syncBuf{}
		cfg.Name = "gate-1"
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
		if cfg.URLs == nil {
			cfg.URLs = []string{tlsURL}
		}
		nc, err := Connect(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc, logs
	}
	// refused waits for the first refusal and checks that the client never
	// got through.
	refused := func(t *testing.T, nc *nats.Conn, logs *syncBuf) error {
		t.Helper()
		// LastError is cleared at each new try: keep the first one seen.
		var first error
		waitFor(t, 10*time.Second, "a refusal", func() bool { first = nc.LastError(); return first != nil })
		time.Sleep(600 * time.Millisecond) // a few more tries
		if nc.IsConnected() {
			t.Fatal("connected")
		}
		if !strings.Contains(logs.String(), "nats connection attempt failed") {
			t.Errorf("the refusal is not in the client's log:\n%s", logs)
		}
		if n := strings.Count(logs.String(), "nats connection attempt failed"); n > 2 {
			t.Errorf("the same refusal logged %d times: log it once per reason", n)
		}
		t.Logf("refused: %v", first)
		return first
	}

	t.Run("right CA and password", func(t *testing.T) {
		nc, _ := connect(t, ClientConfig{User: "gate-1", PasswordFile: gatePW, CAFile: caFile})
		waitFor(t, 10*time.Second, "the connection", nc.IsConnected)
		if st, err := nc.TLSConnectionState(); err != nil || !st.HandshakeComplete {
			t.Fatalf("connected without TLS: %v", err)
		}
		// The gate user has the gate's permissions: its own events subject
		// is allowed, another gate's is not.
		perm := make(chan error, 4)
		nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { perm <- err })
		if err := nc.Publish(EventsSubjectPrefix+"gate-2", []byte("x")); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-perm:
			if !errors.Is(err, nats.ErrPermissionViolation) {
				t.Fatalf("publish to another gate's events: %v, want a permissions violation", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("gate-1 published on gate-2's events subject without a permissions violation")
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		wrong := writeFile(t, t.TempDir(), "pw", []byte("not the right password at all\n"))
		nc, logs := connect(t, ClientConfig{User: "gate-1", PasswordFile: wrong, CAFile: caFile})
		if err := refused(t, nc, logs); !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("error %v, want %v", err, nats.ErrAuthorization)
		}
	})

	t.Run("unknown CA", func(t *testing.T) {
		other := writeFile(t, t.TempDir(), "ca.pem", testpki.New(t).CAPEM)
		nc, logs := connect(t, ClientConfig{User: "gate-1", PasswordFile: gatePW, CAFile: other})
		err := refused(t, nc, logs)
		var ua x509.UnknownAuthorityError
		if !errors.As(err, &ua) {
			t.Fatalf("error %v (%T), want an x509.UnknownAuthorityError", err, err)
		}
		if !strings.Contains(logs.String(), "certificate signed by unknown authority") {
			t.Errorf("log does not name the unknown authority:\n%s", logs)
		}
	})

	// A nats:// URL without a CA file: the client follows the server's
	// tls_required and checks it against the system pool, which does not
	// know the site's CA. There is no plain-text way in.
	t.Run("plain URL, no CA file", func(t *testing.T) {
		nc, logs := connect(t, ClientConfig{URLs: []string{"nats://127.0.0.1:" + strconv.Itoa(port)}, User: "gate-1", PasswordFile: gatePW})
		var ua x509.UnknownAuthorityError
		if err := refused(t, nc, logs); !errors.As(err, &ua) {
			t.Fatalf("error %v (%T), want an x509.UnknownAuthorityError", err, err)
		}
	})

	t.Run("password files", func(t *testing.T) {
		short := writeFile(t, t.TempDir(), "pw", []byte("short\n"))
		for name, cfg := range map[string]ClientConfig{
			"missing": {URLs: []string{tlsURL}, User: "gate-1", PasswordFile: filepath.Join(dir, "absent"), CAFile: caFile},
			"short":   {URLs: []string{tlsURL}, User: "gate-1", PasswordFile: short, CAFile: caFile},
			"no CA":   {URLs: []string{tlsURL}, User: "gate-1", PasswordFile: gatePW, CAFile: filepath.Join(dir, "absent.pem")},
		} {
			if _, err := Connect(cfg); err == nil {
				t.Errorf("client %s: connected", name)
			} else {
				t.Logf("client %s: %v", name, err)
			}
		}
		for name, cfg := range map[string]ServerConfig{
			"short user password": {Name: "x", StoreDir: t.TempDir(), Users: []User{{Name: "u", PasswordFile: short}}},
			"TLS without CA":      {Name: "x", StoreDir: t.TempDir(), CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")},
		} {
			if s, err := StartServer(cfg); err == nil {
				s.Shutdown()
				t.Errorf("server %s: started", name)
			} else {
				t.Logf("server %s: %v", name, err)
			}
		}
	})
}
