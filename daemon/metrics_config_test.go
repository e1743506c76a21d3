package daemon

import (
	"strings"
	"testing"

	"github.com/facegate/facegate/daemon/metrics"
)

// TestMetricsAddrConfig: loopback by default, empty turns metrics off, a
// malformed address is refused naming the variable.
func TestMetricsAddrConfig(t *testing.T) {
	setenv(t, map[string]string{"FACEGATE_DEVICE_ID": "door-1", "FACEGATE_MQTT_BROKERS": "tcp://broker:1883"})
	c, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.MetricsAddr != metrics.DefaultAddr || !metrics.IsLoopback(c.MetricsAddr) {
		t.Fatalf("default metrics address %q", c.MetricsAddr)
	}
	t.Setenv("FACEGATE_METRICS_ADDR", "")
	if c, err = LoadConfig(); err != nil || c.MetricsAddr != "" {
		t.Fatalf("empty: %q, %v", c.MetricsAddr, err)
	}
	for _, bad := range []string{"9464", "127.0.0.1:99999", "not a host:9464"} {
		t.Setenv("FACEGATE_METRICS_ADDR", bad)
		if _, err := LoadConfig(); err == nil || !strings.Contains(err.Error(), "FACEGATE_METRICS_ADDR") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	t.Setenv("FACEGATE_METRICS_ADDR", "0.0.0.0:9464")
	if _, err := LoadConfig(); err != nil {
		t.Errorf("all interfaces refused: %v", err)
	}
}
