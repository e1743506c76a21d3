package mqtt

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type testPKI struct {
	caCert     *x509.Certificate
	caKey      *ecdsa.PrivateKey
	caPEM      []byte
	serverCert tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "facegate test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &testPKI{caCert: ca, caKey: caKey, caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	certPEM, keyPEM := p.issue(t, "broker", x509.ExtKeyUsageServerAuth)
	p.serverCert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *testPKI) issue(t *testing.T, cn string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// TestTLSClientCertificate: the client verifies the broker against
// CAFile and authenticates with CertFile/KeyFile (mutual TLS), and a
// password read from PasswordFile.
func TestTLSClientCertificate(t *testing.T) {
	pki := newTestPKI(t)
	pool := x509.NewCertPool()
	pool.AddCert(pki.caCert)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := StartEmbedded(ctx, "127.0.0.1:0", EmbeddedOptions{
		Users: map[string]string{"door1": "pw-from-file"},
		TLS: &tls.Config{
			Certificates: []tls.Certificate{pki.serverCert}, ClientCAs: pool,
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
	certPEM, keyPEM := pki.issue(t, "door1", x509.ExtKeyUsageClientAuth)
	cfg := Config{
		Brokers: []string{b.URL()}, DeviceID: "door1", OutboxDir: t.TempDir(),
		Username: "door1", PasswordFile: write("pw", []byte("pw-from-file\n")),
		CAFile: write("ca.pem", pki.caPEM), CertFile: write("c.pem", certPEM), KeyFile: write("k.pem", keyPEM),
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
