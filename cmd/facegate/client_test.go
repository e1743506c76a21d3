package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/facegate/facegate/daemon/mqtt"
	"github.com/facegate/facegate/internal/testpki"
)

// TestClientTLS: enroll and watch reach a broker that takes only mutual TLS
// with -ca-file/-cert-file/-key-file (or the daemon's FACEGATE_MQTT_*
// variables), and are refused without a client certificate or against an
// unknown CA.
func TestClientTLS(t *testing.T) {
	pki := testpki.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := mqtt.StartEmbedded(ctx, "127.0.0.1:0", mqtt.EmbeddedOptions{
		Users: map[string]string{"admin": "s3cret"},
		TLS: &tls.Config{
			Certificates: []tls.Certificate{pki.ServerCert}, ClientCAs: pki.Pool(),
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certPEM, keyPEM := pki.Issue(t, "admin", x509.ExtKeyUsageClientAuth)
	ca, cert, key := write("ca.pem", pki.CAPEM), write("c.pem", certPEM), write("k.pem", keyPEM)
	pw := write("pw", []byte("s3cret\n"))
	otherCA := write("other.pem", testpki.New(t).CAPEM)

	connect := func(args ...string) error {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var cf clientFlags
		cf.register(fs)
		if err := fs.Parse(append([]string{"-broker", b.URL(), "-device", "door1", "-user", "admin", "-password-file", pw, "-timeout", "2s"}, args...)); err != nil {
			t.Fatal(err)
		}
		cl, err := cf.connect("facegate-test", nil)
		if err == nil {
			cl.Disconnect(0)
		}
		return err
	}
	if err := connect("-ca-file", ca, "-cert-file", cert, "-key-file", key); err != nil {
		t.Fatalf("mutual TLS: %v", err)
	}
	for name, args := range map[string][]string{
		"no client certificate": {"-ca-file", ca},
		"unknown CA":            {"-ca-file", otherCA, "-cert-file", cert, "-key-file", key},
	} {
		if err := connect(args...); err == nil {
			t.Errorf("%s: connected", name)
		}
	}
	if err := connect("-ca-file", ca, "-cert-file", cert); err == nil || !strings.Contains(err.Error(), "go together") {
		t.Errorf("certificate without key: %v", err)
	}
	// TLS files with a plain tcp:// broker: paho would dial in the clear.
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	if err := fs.Parse([]string{"-broker", "tcp://" + b.Addr(), "-device", "door1", "-ca-file", ca}); err != nil {
		t.Fatal(err)
	}
	if _, err := cf.connect("facegate-test", nil); err == nil || !strings.Contains(err.Error(), "is not TLS") {
		t.Errorf("CA file with a tcp:// broker: %v", err)
	}

	// The daemon's variables are the defaults: watch runs with no TLS flag.
	t.Setenv("FACEGATE_MQTT_CA_FILE", ca)
	t.Setenv("FACEGATE_MQTT_CERT_FILE", cert)
	t.Setenv("FACEGATE_MQTT_KEY_FILE", key)
	wctx, wcancel := context.WithTimeout(ctx, 3*time.Second)
	defer wcancel()
	done := make(chan error, 1)
	go func() {
		done <- cmdWatch(wctx, []string{"-broker", b.URL(), "-device", "door1", "-user", "admin", "-password-file", pw, "-timeout", "2s"}, io.Discard)
	}()
	if err := <-done; err != nil {
		t.Fatalf("watch over TLS from the environment: %v", err)
	}
}
