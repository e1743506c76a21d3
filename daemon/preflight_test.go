package daemon

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facegate/facegate/enroll/store"
	"github.com/facegate/facegate/infer"
)

// preflightEnv is a valid configuration on the exported models, a folder
// camera and key files in a temporary folder.
func preflightEnv(t *testing.T) (map[string]string, string) {
	t.Helper()
	models := filepath.Dir(infer.TestModelDir(t, "dlib-resnet-v1"))
	dir := t.TempDir()
	cam := filepath.Join(dir, "camera")
	os.Mkdir(cam, 0o755)
	key := func(name, id string, fill byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(id+":"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{fill}, 32))+"\n"), 0o600)
		return p
	}
	calFile := filepath.Join(dir, "decision.json")
	if err := testCalibration().Save(calFile); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"FACEGATE_CALIBRATION": calFile, "FACEGATE_PAD_CALIBRATION": filepath.Join("..", "models", "calibration", PADCalibrationFile),
		"FACEGATE_DEVICE_ID": "pre", "FACEGATE_STATE_DIR": filepath.Join(dir, "state"), "FACEGATE_MODELS_DIR": models,
		"FACEGATE_CAMERA": cam, "FACEGATE_MQTT_EMBEDDED": "true", "FACEGATE_MQTT_EMBEDDED_ADDR": "127.0.0.1:0",
		"FACEGATE_ENROLL_KEYS": key("enroll-keys", "k1", 1), "FACEGATE_GALLERY_KEY": key("gallery-key", "g1", 2),
	}, dir
}

func loadWith(t *testing.T, env map[string]string) *Config {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	cfg, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Issue 15, item 1: each start-up problem is found before anything opens,
// named with its variable and remedy, and NewService returns it instead of
// panicking in its clean-up.
func TestPreflightNamesEachProblem(t *testing.T) {
	base, _ := preflightEnv(t)
	if err := Preflight(loadWith(t, base)); err != nil {
		t.Fatalf("valid configuration: %v", err)
	}
	for _, tc := range []struct {
		name  string
		setup func(env map[string]string, dir string)
		v     string // variable named
		want  string // part of the message
	}{
		{"enroll keys 0644", func(env map[string]string, _ string) { os.Chmod(env["FACEGATE_ENROLL_KEYS"], 0o644) }, "ENROLL_KEYS", "chmod 600"},
		{"enroll keys missing", func(env map[string]string, dir string) { env["FACEGATE_ENROLL_KEYS"] = filepath.Join(dir, "nope") }, "ENROLL_KEYS", "file not found"},
		{"gallery key missing", func(env map[string]string, dir string) { env["FACEGATE_GALLERY_KEY"] = filepath.Join(dir, "gone") }, "GALLERY_KEY", "file not found"},
		{"gallery key garbage", func(env map[string]string, _ string) {
			os.WriteFile(env["FACEGATE_GALLERY_KEY"], []byte("junk\n"), 0o600)
		}, "GALLERY_KEY", "id:base64"},
		{"camera missing", func(env map[string]string, dir string) { env["FACEGATE_CAMERA"] = filepath.Join(dir, "no-such-clip") }, "CAMERA", "not found"},
		{"v4l2 device missing", func(env map[string]string, _ string) { env["FACEGATE_CAMERA"] = "/dev/video97" }, "CAMERA", "no such device"},
		{"models folder missing", func(env map[string]string, dir string) { env["FACEGATE_MODELS_DIR"] = filepath.Join(dir, "models") }, "MODELS_DIR", "not a folder"},
		{"calibration missing", func(env map[string]string, dir string) { env["FACEGATE_CALIBRATION"] = filepath.Join(dir, "nope.json") }, "CALIBRATION", "no such file"},
		{"tower not calibrated", func(env map[string]string, dir string) {
			env["FACEGATE_EMBEDDERS"] = "dlib-resnet-v1,vggface2-resnet50"
		}, "EMBEDDERS", "not calibrated"},
		{"embedder missing", func(env map[string]string, _ string) { env["FACEGATE_EMBEDDER"] = "no-such-model" }, "EMBEDDERS", "dlib-resnet-v1"},
		{"uncalibrated FMR", func(env map[string]string, _ string) { env["FACEGATE_TARGET_FMR"] = "0.5" }, "TARGET_FMR", "calibrated rates: "},
		{"password file missing", func(env map[string]string, dir string) {
			env["FACEGATE_MQTT_PASSWORD_FILE"] = filepath.Join(dir, "mqtt-password")
			env["FACEGATE_MQTT_USERNAME"] = "gate"
		}, "MQTT_PASSWORD_FILE", "file not found"},
		{"untrained embedder", func(env map[string]string, _ string) { env["FACEGATE_EMBEDDER"] = "vggface2-resnet50" }, "EMBEDDERS", "untrained"},
		{"pad bpcer not calibrated", func(env map[string]string, _ string) { env["FACEGATE_PAD_BPCER"] = "0.02" }, "PAD_BPCER", "calibrated: 0.01, 0.05"},
		{"pad model missing", func(env map[string]string, _ string) { env["FACEGATE_PAD_MODELS"] = "minifasnet-v2,no-such-pad" }, "PAD_MODELS", "make models"},
		{"pad model not pad", func(env map[string]string, _ string) { env["FACEGATE_PAD_MODELS"] = "dlib-resnet-v1" }, "PAD_MODELS", "not a PAD model"},
		{"pad calibration missing", func(env map[string]string, dir string) {
			env["FACEGATE_PAD_CALIBRATION"] = filepath.Join(dir, "nope.json")
		}, "PAD_CALIBRATION", "no such file"},
		{"pad on another detector", func(env map[string]string, _ string) { env["FACEGATE_DETECTOR"] = "blazeface-full" }, "PAD_BPCER", "FACEGATE_PAD=challenge or off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, dir := preflightEnv(t)
			tc.setup(env, dir)
			cfg := loadWith(t, env)
			err := Preflight(cfg)
			var se *StartupError
			if !errors.As(err, &se) {
				t.Fatalf("Preflight = %v, want a StartupError", err)
			}
			found := false
			for _, p := range se.Problems {
				if p.Var == tc.v && strings.Contains(p.String(), tc.want) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no problem on FACEGATE_%s mentioning %q in:\n%v", tc.v, tc.want, err)
			}
			for _, l := range se.Lines() {
				if strings.Contains(l, "\n") || !strings.HasPrefix(l, "FACEGATE_") {
					t.Fatalf("not one line naming the variable: %q", l)
				}
			}
			// NewService reports the same, without a panic.
			svc, nerr := NewService(cfg, "test", slog.New(slog.NewTextHandler(io.Discard, nil)))
			if svc != nil || !errors.As(nerr, &se) {
				t.Fatalf("NewService = %v, %v", svc, nerr)
			}
		})
	}
}

// A gallery held by a running daemon, or sealed with another key, is
// reported by Preflight (and so by `facegate config`).
func TestPreflightGalleryLockAndKey(t *testing.T) {
	env, dir := preflightEnv(t)
	state := env["FACEGATE_STATE_DIR"]
	k, _ := store.NewKey("g1", bytes.Repeat([]byte{2}, 32))
	st, err := store.Open(GalleryPath(state), k, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := loadWith(t, env)
	err = Preflight(cfg)
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("locked gallery: %v", err)
	}
	st.Close()
	if err := Preflight(cfg); err != nil {
		t.Fatalf("unlocked gallery: %v", err)
	}
	other := filepath.Join(dir, "other-key")
	os.WriteFile(other, []byte("g1:"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32))+"\n"), 0o600)
	env["FACEGATE_GALLERY_KEY"] = other
	err = Preflight(loadWith(t, env))
	if err == nil || !strings.Contains(err.Error(), "FACEGATE_GALLERY_KEY") || !strings.Contains(err.Error(), "sealed with another key") {
		t.Fatalf("wrong gallery key: %v", err)
	}
}
