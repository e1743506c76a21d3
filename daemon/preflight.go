package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/facegate/facegate/capture/sources"
	"github.com/facegate/facegate/daemon/auth"
	"github.com/facegate/facegate/decision"
	"github.com/facegate/facegate/enroll/store"
	"github.com/facegate/facegate/infer/manifest"
)

// Problem is one thing that stops the daemon from starting: the variable
// (and file) at fault, what is wrong, and what to do about it.
type Problem struct {
	Var  string // FACEGATE_* variable, without the prefix
	Path string // the file at fault, if any
	What string
	Fix  string
}

func (p Problem) String() string {
	s := EnvPrefix + "_" + p.Var
	if p.Path != "" {
		s += " (" + p.Path + ")"
	}
	s += ": " + p.What
	if p.Fix != "" {
		s += "; " + p.Fix
	}
	return s
}

// StartupError lists every problem found before start, one line each.
type StartupError struct{ Problems []Problem }

func (e *StartupError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return "cannot start:\n  " + strings.Join(lines, "\n  ")
}

// Lines returns one line per problem, for printing.
func (e *StartupError) Lines() []string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return lines
}

// preflightLockWait is how long Preflight waits for the gallery's lock: a
// lock held longer belongs to another running daemon.
const preflightLockWait = 300 * time.Millisecond

// Preflight checks every resource the daemon needs, without opening
// devices, sockets or TensorFlow: key files (present, mode, format), the
// MQTT credential and TLS files, the models' manifests (present, pretrained
// unless allowed, calibrated for FACEGATE_TARGET_FMR), the camera path,
// the state folder and the gallery (its lock and its key). `facegate
// config` and `facegate run` both run it, so config catches what run would
// refuse. It returns a *StartupError naming each problem, or nil.
func Preflight(cfg *Config) error {
	var ps []Problem
	add := func(p Problem) { ps = append(ps, p) }

	keyFile := func(v, nameOrPath string) (*auth.KeyRing, bool) {
		path, err := Resolve(nameOrPath)
		if err != nil {
			add(Problem{Var: v, What: fmt.Sprintf("%q is neither a file path nor an available systemd credential", nameOrPath),
				Fix: "give a file path, or load it with LoadCredential= in the unit (docs/operations.md, Keys)"})
			return nil, false
		}
		ring, err := auth.LoadKeyRing(path)
		switch {
		case err == nil:
			return ring, true
		case errors.Is(err, fs.ErrNotExist):
			add(Problem{Var: v, Path: path, What: "file not found", Fix: "create it (docs/operations.md, Keys) or point " + EnvPrefix + "_" + v + " at it"})
		case errors.Is(err, auth.ErrInsecureFile):
			add(Problem{Var: v, Path: path, What: "readable by group or others", Fix: "chmod 600 " + path})
		case errors.Is(err, fs.ErrPermission):
			add(Problem{Var: v, Path: path, What: "permission denied", Fix: "make it readable by the user facegate runs as (and by no one else)"})
		default:
			add(Problem{Var: v, Path: path, What: err.Error(), Fix: "one key per line: id:base64 secret of 32 bytes or more, or ed25519:id:base64 public key (docs/security.md)"})
		}
		return nil, false
	}
	if ring, ok := keyFile("ENROLL_KEYS", cfg.EnrollKeys); ok && cfg.SiteConfig.Enabled() {
		until, _ := cfg.SiteConfig.OperatorKeysUntil() // its syntax is Validate's to report
		if err := checkSiteOperatorKeys(ring, cfg.SiteConfig.Ed25519Only(), until); err != nil {
			add(Problem{Var: "ENROLL_KEYS", What: err.Error(), Fix: "list only operators' ed25519:<id>:<public key> lines (docs/site.md, Operator keys)"})
		}
	}
	var galleryKeys []store.Key
	if ring, ok := keyFile("GALLERY_KEY", cfg.GalleryKey); ok {
		// The ring just read, not the file again.
		ks, err := storeKeys(EnvPrefix+"_GALLERY_KEY", ring)
		if err != nil {
			add(Problem{Var: "GALLERY_KEY", What: err.Error(), Fix: "the gallery key is an AES-256 key: id:base64 of 32 bytes"})
		}
		galleryKeys = ks
	}

	// MQTT credentials and TLS files.
	for _, f := range []struct{ v, name string }{
		{"MQTT_PASSWORD_FILE", cfg.MQTT.PasswordFile}, {"MQTT_CA_FILE", cfg.MQTT.CAFile},
		{"MQTT_CERT_FILE", cfg.MQTT.CertFile}, {"MQTT_KEY_FILE", cfg.MQTT.KeyFile},
	} {
		if f.name == "" {
			continue
		}
		path := f.name
		if f.v == "MQTT_PASSWORD_FILE" || f.v == "MQTT_KEY_FILE" {
			p, err := Resolve(f.name)
			if err != nil {
				add(Problem{Var: f.v, What: err.Error(), Fix: "give a file path or a systemd credential name"})
				continue
			}
			path = p
		}
		b, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			add(Problem{Var: f.v, Path: path, What: "file not found", Fix: "create it or unset " + EnvPrefix + "_" + f.v})
		case err != nil:
			add(Problem{Var: f.v, Path: path, What: err.Error(), Fix: "make it readable by the user facegate runs as"})
		case f.v == "MQTT_PASSWORD_FILE" && strings.TrimSpace(string(b)) == "":
			add(Problem{Var: f.v, Path: path, What: "empty", Fix: "write the broker password on its first line"})
		}
	}

	// Models: the manifests say everything Preflight needs.
	modelDir := func(name string) string { return filepath.Join(cfg.ModelsConfig.Dir, name) }
	if st, err := os.Stat(cfg.ModelsConfig.Dir); err != nil || !st.IsDir() {
		add(Problem{Var: "MODELS_DIR", Path: cfg.ModelsConfig.Dir, What: "not a folder", Fix: "install the models (make models, or the package's models folder) and point " + EnvPrefix + "_MODELS_DIR at them"})
	} else {
		if m, err := manifest.Read(modelDir(cfg.ModelsConfig.Detector)); err != nil {
			add(Problem{Var: "DETECTOR", Path: modelDir(cfg.ModelsConfig.Detector), What: err.Error(), Fix: "name a model folder under " + EnvPrefix + "_MODELS_DIR: " + strings.Join(modelNames(cfg.ModelsConfig.Dir), ", ")})
		} else if m.Task != manifest.TaskDetector {
			add(Problem{Var: "DETECTOR", Path: modelDir(cfg.ModelsConfig.Detector), What: fmt.Sprintf("is a %s, not a detector", m.Task), Fix: "name a detector such as blazeface-short"})
		}
		for i, name := range cfg.ModelsConfig.Embedders {
			m, err := manifest.Read(modelDir(name))
			switch {
			case err != nil:
				add(Problem{Var: "EMBEDDERS", Path: modelDir(name), What: err.Error(), Fix: "name model folders under " + EnvPrefix + "_MODELS_DIR: " + strings.Join(modelNames(cfg.ModelsConfig.Dir), ", ")})
				continue
			case m.Task != manifest.TaskEmbedder && m.Task != manifest.TaskSiamese:
				add(Problem{Var: "EMBEDDERS", Path: modelDir(name), What: fmt.Sprintf("is a %s, not an embedder", m.Task), Fix: "name embedders such as dlib-resnet-v1,sface-2021dec"})
				continue
			}
			if m.Weights == manifest.WeightsUntrained && !cfg.AllowUntrained {
				add(Problem{Var: "EMBEDDERS", Path: modelDir(name), What: fmt.Sprintf("%s has untrained weights: it cannot recognise anyone", m.Name),
					Fix: "use pretrained embedders (dlib-resnet-v1, sface-2021dec), or FACEGATE_ALLOW_UNTRAINED=true for benchmarks only"})
			}
			if _, ok := m.ThresholdFor(cfg.TargetFMR, string(m.Metric)); !ok && i == 0 {
				var have []string
				for _, t := range m.Thresholds {
					if r := fmt.Sprintf("%g", t.FMR); !slices.Contains(have, r) {
						have = append(have, r)
					}
				}
				fix := "calibrate it (make calibrate, docs/operations.md)"
				if len(have) > 0 {
					fix = "use one of the calibrated rates: " + strings.Join(have, ", ")
				}
				add(Problem{Var: "TARGET_FMR", What: fmt.Sprintf("%s has no threshold calibrated for FMR %g (1:1 claims)", m.Name, cfg.TargetFMR), Fix: fix})
			}
		}
		ps = append(ps, preflightPAD(cfg)...)
		if cal, err := decision.Load(cfg.ModelsConfig.Calibration); err != nil {
			add(Problem{Var: "CALIBRATION", Path: cfg.ModelsConfig.Calibration, What: err.Error(), Fix: "install models/calibration/decision.json beside the models (make models) or point " + EnvPrefix + "_CALIBRATION at it"})
		} else if _, err := towerKey(cal, cfg.ModelsConfig.Embedders); err != nil {
			add(Problem{Var: "EMBEDDERS", What: err.Error(), Fix: "use towers the calibration covers, or recalibrate (docs/accuracy.md)"})
		}
	}

	// Camera.
	if kind, err := sources.Detect(cfg.Source); err != nil {
		add(Problem{Var: "CAMERA", Path: cfg.Source, What: "not found", Fix: "set " + EnvPrefix + "_CAMERA to a V4L2 device (v4l2-ctl --list-devices), an image folder or a video file"})
	} else if kind == sources.KindV4L2 {
		if _, err := os.Stat(cfg.Source); err != nil {
			add(Problem{Var: "CAMERA", Path: cfg.Source, What: "no such device", Fix: "plug the camera in, or set " + EnvPrefix + "_CAMERA to the right /dev/videoN (v4l2-ctl --list-devices)"})
		}
	} else if kind == sources.KindFFmpeg {
		if _, err := exec.LookPath("ffmpeg"); err != nil {
			add(Problem{Var: "CAMERA", Path: cfg.Source, What: "a video file needs ffmpeg, which is not installed", Fix: "apt-get install ffmpeg, or use an .mjpeg file or an image folder"})
		}
	}

	// Embedded broker address.
	if cfg.Embedded {
		if _, _, err := net.SplitHostPort(cfg.EmbeddedAddr); err != nil {
			add(Problem{Var: "MQTT_EMBEDDED_ADDR", What: err.Error(), Fix: "host:port, e.g. 127.0.0.1:1883"})
		}
	}

	// State folder and gallery.
	if st, err := os.Stat(cfg.StateDir); err == nil && !st.IsDir() {
		add(Problem{Var: "STATE_DIR", Path: cfg.StateDir, What: "not a folder", Fix: "point it at a folder (systemd: StateDirectory=facegate)"})
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		add(Problem{Var: "STATE_DIR", Path: cfg.StateDir, What: err.Error(), Fix: "make it accessible to the user facegate runs as"})
	} else if err == nil && len(galleryKeys) > 0 {
		ps = append(ps, checkGallery(GalleryPath(cfg.StateDir), galleryKeys)...)
	}
	if len(ps) > 0 {
		return &StartupError{Problems: ps}
	}
	return nil
}

// checkGallery opens an existing gallery read-only (a shared lock): a
// running daemon's exclusive lock or a wrong key shows here.
func checkGallery(path string, keys []store.Key) []Problem {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil // created on first start
	}
	st, err := store.Open(path, keys[0], store.Options{OldKeys: keys[1:], ReadOnly: true, LockTimeout: preflightLockWait})
	switch {
	case err == nil:
		st.Close()
		return nil
	case errors.Is(err, store.ErrLocked):
		return []Problem{{Var: "STATE_DIR", Path: path, What: "the gallery is locked by another process (is facegate already running?)",
			Fix: "stop it (systemctl stop facegate) or give this one its own " + EnvPrefix + "_STATE_DIR"}}
	case errors.Is(err, store.ErrWrongKey), errors.Is(err, store.ErrUnknownKey):
		return []Problem{{Var: "GALLERY_KEY", Path: path, What: "the gallery was sealed with another key: " + err.Error(),
			Fix: "restore the key file it was sealed with (a rotation keeps the old key on later lines: docs/operations.md)"}}
	default:
		return []Problem{{Var: "STATE_DIR", Path: path, What: err.Error(), Fix: "check the file (facegate gallery check) or restore it from a backup"}}
	}
}

// modelNames lists the model folders under dir, for hints.
func modelNames(dir string) []string {
	es, _ := os.ReadDir(dir)
	var out []string
	for _, e := range es {
		if _, err := os.Stat(filepath.Join(dir, e.Name(), manifest.File)); err == nil {
			out = append(out, e.Name())
		}
	}
	if len(out) == 0 {
		return []string{"(none found)"}
	}
	return out
}
