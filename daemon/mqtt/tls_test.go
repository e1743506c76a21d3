package mqtt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/facegate/facegate/internal/testpki"
)

// TestTLSClientCertificate: the client verifies the broker against
// CAFile and authenticates with CertFile/KeyFile (mutual TLS), and a
// password read from PasswordFile.
func TestTLSClientCertificate(t *testing.T) {
	pki := testpki.New(t)
	pool := pki.Pool()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := StartEmbedded(ctx, "127.0.0.1:0", EmbeddedOptions{
		Users: map[string]string{"door1": "pw-from-file"},
		TLS: &tls.Config{
			Certificates: []tls.Certificate{pki.ServerCert}, ClientCAs: pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.URL(), "ssl://") {
		t.Fatalf("url %s", b.URL())
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certPEM, keyPEM := pki.Issue(t, "door1", x509.ExtKeyUsageClientAuth)
	cfg := Config{
		Brokers: []string{b.URL()}, DeviceID: "door1", OutboxDir: t.TempDir(),
		Username: "door1", PasswordFile: write("pw", []byte("pw-from-file\n")),
		CAFile: write("ca.pem", pki.CAPEM), CertFile: write("c.pem", certPEM), KeyFile: write("k.pem", keyPEM),
		MaxReconnectInterval: time.Second, StatsInterval: time.Hour,
	}
	run := func(cfg Config) (*Client, func()) {
		c, err := New(cfg, Handlers{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		cctx, ccancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c.Run(cctx) }()
		return c, func() {
			ccancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}
	c, stop := run(cfg)
	if !waitFor(10*time.Second, c.Connected) {
		t.Fatal("mutual-TLS client did not connect")
	}
	stop()

	// Without a client certificate, or with a wrong password, no session.
	noCert := cfg
	noCert.CertFile, noCert.KeyFile, noCert.OutboxDir = "", "", t.TempDir()
	badPW := cfg
	badPW.PasswordFile, badPW.OutboxDir = write("bad", []byte("nope")), t.TempDir()
	for name, cfg := range map[string]Config{"no client cert": noCert, "bad password": badPW} {
		c, stop := run(cfg)
		if waitFor(1500*time.Millisecond, c.Connected) {
			t.Errorf("%s: connected", name)
		}
		stop()
	}
}
