package daemontest

import (
	"context"
	"testing"

	"github.com/facegate/facegate/daemon/mqtt"
)

// Broker starts the daemon's embedded MQTT broker (mochi-mqtt, loopback
// clients only) on a free port of 127.0.0.1 until the test ends.
func Broker(t testing.TB) *mqtt.Embedded {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b, err := mqtt.StartEmbedded(ctx, "127.0.0.1:0", mqtt.EmbeddedOptions{})
	if err != nil {
		cancel()
		t.Fatalf("embedded broker: %v", err)
	}
	t.Cleanup(func() {
		b.Close()
		cancel()
	})
	return b
}
