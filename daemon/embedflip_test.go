package daemon

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facegate/facegate/infer"
)

// TestEmbedFlipConfig: FACEGATE_EMBED_FLIP is off by default and, when on,
// reaches every tower's embedder.
func TestEmbedFlipConfig(t *testing.T) {
	setenv(t, map[string]string{"FACEGATE_DEVICE_ID": "door-1", "FACEGATE_MQTT_BROKERS": "tcp://127.0.0.1:1883", "FACEGATE_STATE_DIR": t.TempDir()})
	c, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.ModelsConfig.EmbedFlip {
		t.Fatal("FACEGATE_EMBED_FLIP is on by default")
	}
	t.Setenv("FACEGATE_EMBED_FLIP", "true")
	if c, err = LoadConfig(); err != nil {
		t.Fatal(err)
	}
	if !c.ModelsConfig.EmbedFlip {
		t.Fatal("FACEGATE_EMBED_FLIP=true not read")
	}
	// The calibration says how it was fitted: a mismatch refuses to start
	// (the head and thresholds would not hold), a match reaches every
	// tower, and flipped templates are stored under their own version.
	for _, flip := range []bool{false, true} {
		for _, calFlip := range []bool{false, true} {
			cal := testCalibration()
			for i := range cal.Towers {
				cal.Towers[i].Flip = calFlip
			}
			cfg := ModelsConfig{Dir: filepath.Dir(infer.TestModelDir(t, "dlib-resnet-v1")), Embedders: []string{"dlib-resnet-v1", "sface-2021dec"}, EmbedFlip: flip}
			towers, models, err := LoadTowers(cfg, cal, infer.Options{})
			if flip != calFlip {
				if !errors.Is(err, ErrFlipMismatch) || !strings.Contains(err.Error(), "FACEGATE_EMBED_FLIP") {
					t.Errorf("flip %v with a calibration fitted with %v: %v, want ErrFlipMismatch naming FACEGATE_EMBED_FLIP", flip, calFlip, err)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, tw := range towers {
				if tw.Emb.Flip() != flip {
					t.Errorf("EmbedFlip %v: tower %s has flip %v", flip, tw.Name(), tw.Emb.Flip())
				}
				if got := strings.HasSuffix(tw.Store.Version, "+flip"); got != flip {
					t.Errorf("EmbedFlip %v: templates stored as version %q", flip, tw.Store.Version)
				}
			}
			for _, m := range models {
				m.Close()
			}
		}
	}
}
