package daemon

import (
	"bytes"
	"strings"
	"testing"
)

// TestPrintDescribesEveryVariable: `facegate config` gives every variable a
// meaning (an envconfig desc tag), the nested MQTT ones included.
func TestPrintDescribesEveryVariable(t *testing.T) {
	setenv(t, map[string]string{"FACEGATE_DEVICE_ID": "door-1", "FACEGATE_MQTT_EMBEDDED": "true", "FACEGATE_STATE_DIR": t.TempDir()})
	c, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.Print(&buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	col := strings.Index(lines[0], "MEANING")
	if col < 0 {
		t.Fatalf("no MEANING column in the header %q", lines[0])
	}
	mqtt := 0
	for _, l := range lines[1:] {
		name, _, _ := strings.Cut(l, " ")
		if strings.HasPrefix(name, "FACEGATE_MQTT_") {
			mqtt++
		}
		if len(l) <= col || strings.TrimSpace(l[col:]) == "" {
			t.Errorf("%s has no description (add a desc tag)", name)
		}
	}
	if len(lines) < 40 || mqtt < 20 {
		t.Fatalf("printed %d variables, %d of them FACEGATE_MQTT_*: expected the whole configuration", len(lines)-1, mqtt)
	}
}
