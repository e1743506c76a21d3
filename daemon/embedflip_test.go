package daemon

import (
	"path/filepath"
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
	for _, flip := range []bool{false, true} {
		cfg := ModelsConfig{Dir: filepath.Dir(infer.TestModelDir(t, "dlib-resnet-v1")), Embedders: []string{"dlib-resnet-v1", "sface-2021dec"}, EmbedFlip: flip}
		towers, models, err := LoadTowers(cfg, testCalibration(), infer.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, tw := range towers {
			if tw.Emb.Flip() != flip {
				t.Errorf("EmbedFlip %v: tower %s has flip %v", flip, tw.Name(), tw.Emb.Flip())
			}
		}
		for _, m := range models {
			m.Close()
		}
	}
}
