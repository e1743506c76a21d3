package mqtt

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Issue 15, item 6: a wrong password is visible while the client retries
// (a warning with the broker's reason and the remedy), and a missing
// password file is an error before the client runs.
func TestCredentialProblemsAreVisible(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := StartEmbedded(ctx, "127.0.0.1:0", EmbeddedOptions{Users: map[string]string{"gate": "right-password"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("wrong-password\n"), 0o600)

	cfg := Config{Brokers: []string{b.URL()}, DeviceID: "door9", OutboxDir: filepath.Join(dir, "outbox"),
		Username: "gate", PasswordFile: filepath.Join(dir, "missing")}
	if _, err := New(cfg, Handlers{}, nil); err == nil || !strings.Contains(err.Error(), "FACEGATE_MQTT_PASSWORD_FILE") {
		t.Fatalf("missing password file: New = %v, want an error naming FACEGATE_MQTT_PASSWORD_FILE", err)
	}

	cfg.PasswordFile = pw
	var logs syncBuffer
	c, err := New(cfg, Handlers{}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(rctx) }()
	if !waitFor(10*time.Second, func() bool { return strings.Contains(logs.String(), "MQTT connection attempt failed") }) {
		stop()
		<-done
		t.Fatalf("no warning while retrying with a wrong password; log:\n%s", logs.String())
	}
	stop()
	<-done
	out := logs.String()
	if !strings.Contains(out, "FACEGATE_MQTT_PASSWORD_FILE") || strings.Contains(out, "wrong-password") {
		t.Fatalf("warning lacks the remedy or shows the secret:\n%s", out)
	}
	if c.Connected() {
		t.Fatal("connected with a wrong password")
	}
}
