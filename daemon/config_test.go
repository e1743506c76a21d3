package daemon

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func setenv(t *testing.T, kv map[string]string) {
	for k, v := range kv {
		t.Setenv(k, v)
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	setenv(t, map[string]string{"FACEGATE_DEVICE_ID": "door-1", "FACEGATE_MQTT_BROKERS": "ssl://broker.example:8883,tcp://backup:1883", "FACEGATE_STATE_DIR": "/var/lib/fg"})
	c, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.DeviceID != "door-1" || strings.Join(c.ModelsConfig.Embedders, ",") != "dlib-resnet-v1,sface-2021dec" || c.DecideConfig.TargetFMR != 1e-3 || c.DecideConfig.TargetFPIR != 1e-3 ||
		len(c.MQTT.Brokers) != 2 || c.MQTT.Brokers[1] != "tcp://backup:1883" || c.MQTT.DeviceID != "door-1" ||
		c.MQTT.OutboxDir != "/var/lib/fg/outbox" || c.MQTT.Prefix != "facegate" {
		t.Fatalf("defaults: %+v", c)
	}
	t.Setenv("FACEGATE_TARGET_FMR", "0.0001")
	t.Setenv("FACEGATE_CAMERA", "/dev/video2")
	t.Setenv("FACEGATE_STATE_DIR", "")
	t.Setenv("STATE_DIRECTORY", "/var/lib/facegate-x")
	c, err = LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.DecideConfig.TargetFMR != 1e-4 || c.CameraConfig.Source != "/dev/video2" || c.StateDir != "/var/lib/facegate-x" {
		t.Fatalf("overrides: %+v", c)
	}
}

// TestOldEmbedderSetting: FACEGATE_EMBEDDER alone is still one tower;
// beside FACEGATE_EMBEDDERS it is refused, naming the replacement.
func TestOldEmbedderSetting(t *testing.T) {
	setenv(t, map[string]string{"FACEGATE_DEVICE_ID": "door-1", "FACEGATE_MQTT_EMBEDDED": "true", "FACEGATE_EMBEDDER": "dlib-resnet-v1"})
	c, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.ModelsConfig.Embedders) != 1 || c.ModelsConfig.Embedders[0] != "dlib-resnet-v1" {
		t.Fatalf("embedders %v", c.ModelsConfig.Embedders)
	}
	t.Setenv("FACEGATE_EMBEDDERS", "sface-2021dec")
	if _, err := LoadConfig(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "FACEGATE_EMBEDDERS") {
		t.Fatalf("both set: %v", err)
	}
}

func TestValidateNamesTheVariable(t *testing.T) {
	cases := map[string][2]string{
		"FACEGATE_DEVICE_ID":           {"door/1", "FACEGATE_DEVICE_ID"},
		"FACEGATE_TARGET_FMR":          {"2", "FACEGATE_TARGET_FMR"},
		"FACEGATE_TARGET_FPIR":         {"0", "FACEGATE_TARGET_FPIR"},
		"FACEGATE_EMBEDDERS":           {"dlib-resnet-v1,dlib-resnet-v1", "FACEGATE_EMBEDDERS"},
		"FACEGATE_VISIT_TIMEOUT":       {"0s", "FACEGATE_VISIT_TIMEOUT"},
		"FACEGATE_MODE":                {"2:N", "FACEGATE_MODE"},
		"FACEGATE_AGREE_N":             {"5", "FACEGATE_AGREE_N"},
		"FACEGATE_CAMERA_FORMAT":       {"H264", "FACEGATE_CAMERA_FORMAT"},
		"FACEGATE_MQTT_BROKERS":        {"tcp://user:secret@host:1883", "FACEGATE_MQTT_BROKERS"},
		"FACEGATE_MQTT_PREFIX":         {"a/+/b", "FACEGATE_MQTT"},
		"FACEGATE_GPU_MEMORY_FRACTION": {"1.5", "FACEGATE_GPU_MEMORY_FRACTION"},
		"FACEGATE_LOG_LEVEL":           {"loud", "FACEGATE_LOG_LEVEL"},
		"FACEGATE_QUALITY_MAX_YAW":     {"0", "FACEGATE_QUALITY_MAX_YAW"},
		"FACEGATE_CAMERA_FPS":          {"-5", "FACEGATE_CAMERA_FPS"},
		"FACEGATE_TRACK_THRESHOLD":     {"300", "FACEGATE_TRACK_THRESHOLD"},
		"FACEGATE_TRACK_MAX_FRAMES":    {"0", "FACEGATE_TRACK_MAX_FRAMES"},
		"FACEGATE_TRACK_MAX_AGE":       {"-1s", "FACEGATE_TRACK_MAX_AGE"},
	}
	for env, c := range cases {
		t.Run(env, func(t *testing.T) {
			setenv(t, map[string]string{"FACEGATE_DEVICE_ID": "door-1", "FACEGATE_MQTT_EMBEDDED": "true", env: c[0]})
			_, err := LoadConfig()
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c[1]) {
				t.Fatalf("err = %v, want ErrConfig naming %s", err, c[1])
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("error leaks a secret: %v", err)
			}
		})
	}
	t.Setenv("FACEGATE_DEVICE_ID", "door-1")
	t.Setenv("FACEGATE_MQTT_EMBEDDED", "true")
	t.Setenv("FACEGATE_COOLDOWN", "soon")
	if _, err := LoadConfig(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "COOLDOWN") {
		t.Fatalf("unparsable duration: %v", err)
	}
}

func TestNoBroker(t *testing.T) {
	t.Setenv("FACEGATE_DEVICE_ID", "door-1")
	if _, err := LoadConfig(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "FACEGATE_MQTT_BROKERS") {
		t.Fatalf("err = %v", err)
	}
	t.Setenv("FACEGATE_MQTT_EMBEDDED", "true")
	c, err := LoadConfig()
	if err != nil || c.MQTT.Brokers[0] != "tcp://127.0.0.1:1883" {
		t.Fatalf("embedded: %+v, %v", c, err)
	}
}

func TestPrintListsEveryVariable(t *testing.T) {
	setenv(t, map[string]string{"FACEGATE_DEVICE_ID": "door-1", "FACEGATE_MQTT_EMBEDDED": "true"})
	c, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := c.Print(&b); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"FACEGATE_DEVICE_ID", "FACEGATE_MODELS_DIR", "FACEGATE_TARGET_FMR", "FACEGATE_MQTT_BROKERS", "FACEGATE_MQTT_PASSWORD_FILE", "FACEGATE_GALLERY_KEY", "FACEGATE_CAMERA_FORMAT", "FACEGATE_QUALITY_MIN_IOD", "FACEGATE_MQTT_EMBEDDED", "FACEGATE_MQTT_OUTBOX_MAX_BYTES"} {
		if !strings.Contains(b.String(), v+" ") {
			t.Errorf("Print lacks %s:\n%s", v, b.String())
		}
	}
	c.MQTT.Brokers = []string{"tcp://u:hunter2@broker:1883"}
	b.Reset()
	c.Print(&b)
	if strings.Contains(b.String(), "hunter2") {
		t.Fatalf("Print shows a password:\n%s", b.String())
	}
}

// TestExampleEnvNamesRealVariables: every variable the shipped example
// environment file sets is one facegate reads (envconfig ignores unknown
// names, so a misspelt one would silently keep its default), and the file
// as shipped, with its secrets' files present, is a valid configuration.
func TestExampleEnvNamesRealVariables(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "systemd", "facegate.env.example"))
	if err != nil {
		t.Fatal(err)
	}
	setenv(t, map[string]string{"FACEGATE_DEVICE_ID": "door-1", "FACEGATE_MQTT_EMBEDDED": "true"})
	c, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	var listed bytes.Buffer
	if err := c.Print(&listed); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok || !strings.Contains(listed.String(), name+" ") {
			t.Errorf("facegate.env.example sets %q, which facegate does not read", name)
		}
		vars[name] = value
	}
	if len(vars) == 0 {
		t.Fatal("no variables in the example")
	}
	vars["FACEGATE_MQTT_EMBEDDED"] = "false" // the example's broker, not the embedded one
	setenv(t, vars)
	if _, err := LoadConfig(); err != nil {
		t.Fatalf("the example is not a valid configuration: %v", err)
	}
}
