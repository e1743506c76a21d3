package daemon

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/facegate/facegate/daemon/metrics"
	"github.com/facegate/facegate/daemon/mqtt"
	"github.com/facegate/facegate/infer/track"
)

// EnvPrefix prefixes every configuration variable.
const EnvPrefix = "FACEGATE"

// Config is facegate's whole configuration, read from FACEGATE_* environment
// variables (systemd: EnvironmentFile=/etc/default/facegate). Secrets are
// never values here: only paths of files or systemd credentials that hold
// them. `facegate config` prints the effective values.
type Config struct {
	// DeviceID names this gate in MQTT topics and events.
	DeviceID string `envconfig:"DEVICE_ID" desc:"gate id used in MQTT topics (default: the host name)"`
	// StateDir holds the gallery database and the event outbox.
	StateDir string `envconfig:"STATE_DIR" default:"/var/lib/facegate" desc:"state directory (systemd StateDirectory=)"`
	LogLevel string `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	// MetricsAddr serves Prometheus /metrics, /healthz and /readyz
	// (daemon/metrics); empty turns them off. They are not authenticated.
	MetricsAddr string `envconfig:"METRICS_ADDR" default:"127.0.0.1:9464" desc:"host:port for Prometheus /metrics, /healthz and /readyz (empty = off; unauthenticated: keep it on loopback or firewalled)"`

	// The sections are embedded so envconfig keeps the FACEGATE_ prefix
	// without the section's name.
	ModelsConfig
	CameraConfig
	DecideConfig
	QualityConfig
	TrackConfig
	PADConfig // FACEGATE_PAD*: pad.go
	BrokerConfig
	KeysConfig
	SiteConfig // FACEGATE_SITE_*: config_site.go
	// MQTT is the broker connection and topics: FACEGATE_MQTT_* (see
	// docs/mqtt.md). Its device id and outbox folder come from DEVICE_ID
	// and STATE_DIR.
	MQTT mqtt.Config `envconfig:"MQTT"`
}

// ModelsConfig selects the models and how TensorFlow runs them.
type ModelsConfig struct {
	Dir      string `envconfig:"MODELS_DIR" default:"/usr/share/facegate/models" desc:"folder of exported models"`
	Detector string `envconfig:"DETECTOR" default:"blazeface-short" desc:"detector model name (blazeface-short for close faces, blazeface-full for far ones)"`
	// Embedders are the towers of the live pipeline: each embeds every
	// good face with its own alignment, and their scores are fused
	// (docs/operations.md, Decisions).
	Embedders []string `envconfig:"EMBEDDERS" default:"dlib-resnet-v1,sface-2021dec" desc:"embedding models (towers), comma-separated: dlib-resnet-v1, sface-2021dec or both (fused); the first also cuts the chip the quality gate measures and scores 1:1 claims"`
	// Embedder is the single embedder of old configurations: alone it
	// still means a one-tower gate (FACEGATE_EMBEDDERS=<it>); with
	// FACEGATE_EMBEDDERS it is refused.
	Embedder string `envconfig:"EMBEDDER" desc:"deprecated: one embedding model; use FACEGATE_EMBEDDERS"`
	// EmbedFlip embeds each face and its mirror image with every tower
	// (infer.Embedder.SetFlip); the calibration must have been fitted the
	// same way (docs/accuracy.md, Flip test-time augmentation).
	EmbedFlip bool `envconfig:"EMBED_FLIP" default:"false" desc:"embed each face and its mirror image and sum them (flip test-time augmentation): about twice the embedding time; refused unless the decision calibration was fitted with it (docs/accuracy.md)"`
	// Calibration is the decision calibration (decision/): per-tower
	// normalisation, fusion heads and per-visit impostor models.
	Calibration    string  `envconfig:"CALIBRATION" desc:"decision calibration file (default: decision.json in FACEGATE_MODELS_DIR)"`
	AllowUntrained bool    `envconfig:"ALLOW_UNTRAINED" default:"false" desc:"allow decisions with untrained (random) weights: never on a real door"`
	IntraOpThreads int     `envconfig:"TF_INTRA_OP_THREADS" default:"1" desc:"TensorFlow intra-op threads (0 = one per core); 1 is fastest on 2 cores, docs/benchmarks.md, Thread settings"`
	InterOpThreads int     `envconfig:"TF_INTER_OP_THREADS" default:"1" desc:"TensorFlow inter-op threads"`
	GPUDevices     string  `envconfig:"GPU_DEVICES" desc:"visible GPU ids, e.g. 0 (empty: all)"`
	GPUMemFraction float64 `envconfig:"GPU_MEMORY_FRACTION" default:"0" desc:"cap on each GPU's memory share (0 = no cap)"`
	GPUAllowGrowth bool    `envconfig:"GPU_ALLOW_GROWTH" default:"true" desc:"allocate GPU memory as needed"`
}

// CameraConfig is the frame source.
type CameraConfig struct {
	Source string `envconfig:"CAMERA" default:"/dev/video0" desc:"V4L2 device, image folder, .mjpeg file or video file"`
	Format string `envconfig:"CAMERA_FORMAT" default:"auto" desc:"MJPEG, YUYV or auto"`
	Width  int    `envconfig:"CAMERA_WIDTH" default:"1280" desc:"largest frame width wanted"`
	Height int    `envconfig:"CAMERA_HEIGHT" default:"720" desc:"largest frame height wanted"`
	FPS    int    `envconfig:"CAMERA_FPS" default:"15" desc:"frames per second wanted; files are paced at it (0 = the camera's or file's own rate, -1 = as fast as possible)"`
	Loop   bool   `envconfig:"CAMERA_LOOP" default:"false" desc:"loop file sources (demos)"`
}

// DecideConfig governs decisions.
type DecideConfig struct {
	// TargetFPIR is the operator's knob for 1:N: the false-positive
	// identification rate per visit of someone not enrolled, at the
	// current gallery size (the threshold follows the gallery).
	TargetFPIR float64 `envconfig:"TARGET_FPIR" default:"0.001" desc:"1:N: target rate of visits by someone not enrolled that are granted to someone (per visit, at the current gallery size)"`
	// TargetFMR picks the per-comparison threshold of 1:1 claims from the
	// first embedder's manifest.
	TargetFMR       float64       `envconfig:"TARGET_FMR" default:"0.001" desc:"1:1 claims: target false-match rate per comparison; its threshold must be in the first embedder's manifest"`
	Mode            string        `envconfig:"MODE" default:"1:N" desc:"1:N (identify anyone enrolled) or 1:1 (only verify claims)"`
	AgreeN          int           `envconfig:"AGREE_N" default:"2" desc:"1:1 claims: frames that must agree on the claimed subject ... (1:N decides per visit: FACEGATE_TARGET_FPIR)"`
	AgreeM          int           `envconfig:"AGREE_M" default:"3" desc:"... out of the last M frames with a face"`
	VisitGap        time.Duration `envconfig:"VISIT_GAP" default:"1s" desc:"a visit (one face from appearance to disappearance) ends when its face is gone this long"`
	VisitLimit      time.Duration `envconfig:"VISIT_TIMEOUT" default:"5s" desc:"an undecided visit ends as unknown this long after its first frame (the next frame starts a new one)"`
	Cooldown        time.Duration `envconfig:"COOLDOWN" default:"10s" desc:"one event per subject per cooldown"`
	ClaimTimeout    time.Duration `envconfig:"CLAIM_TIMEOUT" default:"10s" desc:"how long a 1:1 claim waits for a good face"`
	UnknownInterval time.Duration `envconfig:"UNKNOWN_INTERVAL" default:"30s" desc:"at most one unknown event per interval"`
	IncludeImage    bool          `envconfig:"EVENT_IMAGE" default:"false" desc:"attach the face crop to events (privacy: off by default)"`

	// EnrollDuplicateRate is the enrollment duplicate check's target: the
	// rate at which a request of someone not enrolled is refused as a
	// duplicate of one of the people enrolled (the threshold follows the
	// gallery size; docs/enrollment.md).
	EnrollDuplicateRate float64 `envconfig:"ENROLL_DUPLICATE_RATE" default:"0.01" desc:"enrollment: target rate of requests by someone not enrolled refused as a duplicate of an enrolled person (per request, at the current gallery size); the conflict checks use FACEGATE_TARGET_FMR per comparison"`
}

// QualityConfig sets the quality gate a face must pass before matching.
type QualityConfig struct {
	MinInterOcular float64 `envconfig:"QUALITY_MIN_IOD" default:"30" desc:"minimum inter-ocular distance in pixels"`
	MinSharpness   float64 `envconfig:"QUALITY_MIN_SHARPNESS" default:"20" desc:"minimum variance of the Laplacian of the aligned chip"`
	MaxYaw         float64 `envconfig:"QUALITY_MAX_YAW" default:"35" desc:"maximum |yaw| in degrees"`
	MaxPitch       float64 `envconfig:"QUALITY_MAX_PITCH" default:"30" desc:"maximum |pitch| in degrees"`
	MaxRoll        float64 `envconfig:"QUALITY_MAX_ROLL" default:"30" desc:"maximum |roll| in degrees"`
}

// TrackConfig lets frames reuse the last detection while the face holds
// still (infer/track): off by default, see docs/benchmarks.md, "Tracking".
type TrackConfig struct {
	TrackThreshold float64       `envconfig:"TRACK_THRESHOLD" default:"0" desc:"reuse the last detection while each face's 16x16 luma thumbnail differs by less than this (levels 0-255; 0 = off, 8 = the measured setting)"`
	TrackMaxFrames int           `envconfig:"TRACK_MAX_FRAMES" default:"5" desc:"with tracking: at most this many frames in a row reuse one detection"`
	TrackMaxAge    time.Duration `envconfig:"TRACK_MAX_AGE" default:"250ms" desc:"with tracking: a detection is reused for at most this long (0 = no time bound)"`
}

// Track is the tracker's configuration.
func (c TrackConfig) Track() track.Config {
	return track.Config{Threshold: c.TrackThreshold, MaxFrames: c.TrackMaxFrames, MaxAge: c.TrackMaxAge}
}

// BrokerConfig runs the embedded broker: the device is the broker (single
// door sites, the demo). The MQTT client settings are in Config.MQTT.
type BrokerConfig struct {
	Embedded     bool   `envconfig:"MQTT_EMBEDDED" default:"false" desc:"run an embedded MQTT broker on FACEGATE_MQTT_EMBEDDED_ADDR and connect to it"`
	EmbeddedAddr string `envconfig:"MQTT_EMBEDDED_ADDR" default:"127.0.0.1:1883" desc:"embedded broker listen address (loopback clients only unless users are configured)"`
}

// KeysConfig locates secrets. Values are file paths or systemd credential
// names (resolved in $CREDENTIALS_DIRECTORY), never the secrets themselves.
type KeysConfig struct {
	EnrollKeys string `envconfig:"ENROLL_KEYS" default:"enroll-keys" desc:"HMAC key ring for enrollment requests (file or credential name)"`
	GalleryKey string `envconfig:"GALLERY_KEY" default:"gallery-key" desc:"AES-256 key encrypting templates at rest (file or credential name)"`
}

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("invalid configuration")

// LoadConfig reads the configuration from the environment and validates it.
func LoadConfig() (*Config, error) {
	var c Config
	if err := envconfig.Process(EnvPrefix, &c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if c.DeviceID == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("%w: FACEGATE_DEVICE_ID unset and no host name: %v", ErrConfig, err)
		}
		c.DeviceID = h
	}
	if c.ModelsConfig.Embedder != "" {
		if _, set := os.LookupEnv(EnvPrefix + "_EMBEDDERS"); set {
			return nil, fmt.Errorf("%w: %s_EMBEDDER is replaced by %s_EMBEDDERS; unset %s_EMBEDDER", ErrConfig, EnvPrefix, EnvPrefix, EnvPrefix)
		}
		c.ModelsConfig.Embedders = []string{c.ModelsConfig.Embedder}
	}
	if sd := os.Getenv("STATE_DIRECTORY"); sd != "" && os.Getenv(EnvPrefix+"_STATE_DIR") == "" {
		c.StateDir = strings.Split(sd, ":")[0]
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks every value before anything opens; each problem names its
// variable.
func (c *Config) Validate() error {
	var errs []string
	bad := func(v, format string, args ...any) {
		errs = append(errs, EnvPrefix+"_"+v+": "+fmt.Sprintf(format, args...))
	}
	if !validTopicLevel(c.DeviceID) {
		bad("DEVICE_ID", "%q must be non-empty and free of '/', '+', '#' and spaces", c.DeviceID)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("LOG_LEVEL", "%q is not debug, info, warn or error", c.LogLevel)
	}
	if c.StateDir == "" {
		bad("STATE_DIR", "empty")
	}
	if c.ModelsConfig.Dir == "" || c.ModelsConfig.Detector == "" {
		bad("MODELS_DIR", "models dir and detector must both be set")
	}
	if len(c.ModelsConfig.Embedders) == 0 {
		bad("EMBEDDERS", "name at least one embedding model, e.g. dlib-resnet-v1,sface-2021dec")
	}
	for i, e := range c.ModelsConfig.Embedders {
		if e == "" || strings.ContainsAny(e, "/ ") || slices.Contains(c.ModelsConfig.Embedders[:i], e) {
			bad("EMBEDDERS", "%q: name each model folder once, comma-separated", e)
		}
	}
	if c.ModelsConfig.IntraOpThreads < 0 || c.ModelsConfig.IntraOpThreads > 256 {
		bad("TF_INTRA_OP_THREADS", "%d not in 0..256", c.ModelsConfig.IntraOpThreads)
	}
	if c.ModelsConfig.InterOpThreads < 0 || c.ModelsConfig.InterOpThreads > 256 {
		bad("TF_INTER_OP_THREADS", "%d not in 0..256", c.ModelsConfig.InterOpThreads)
	}
	if c.ModelsConfig.GPUMemFraction < 0 || c.ModelsConfig.GPUMemFraction > 1 {
		bad("GPU_MEMORY_FRACTION", "%g not in [0,1]", c.ModelsConfig.GPUMemFraction)
	}
	switch strings.ToUpper(c.CameraConfig.Format) {
	case "AUTO", "MJPEG", "YUYV":
	default:
		bad("CAMERA_FORMAT", "%q is not MJPEG, YUYV or auto", c.CameraConfig.Format)
	}
	if c.CameraConfig.Source == "" {
		bad("CAMERA", "empty")
	}
	if c.CameraConfig.Width < 16 || c.CameraConfig.Width > 8192 || c.CameraConfig.Height < 16 || c.CameraConfig.Height > 8192 {
		bad("CAMERA_WIDTH", "size %dx%d not within 16..8192", c.CameraConfig.Width, c.CameraConfig.Height)
	}
	if c.CameraConfig.FPS < -1 || c.CameraConfig.FPS > 240 {
		bad("CAMERA_FPS", "%d not in -1..240", c.CameraConfig.FPS)
	}
	if !(c.DecideConfig.TargetFMR > 0 && c.DecideConfig.TargetFMR < 1) {
		bad("TARGET_FMR", "%g not in (0,1)", c.DecideConfig.TargetFMR)
	}
	if !(c.DecideConfig.TargetFPIR > 0 && c.DecideConfig.TargetFPIR < 1) {
		bad("TARGET_FPIR", "%g not in (0,1)", c.DecideConfig.TargetFPIR)
	}
	if !(c.DecideConfig.EnrollDuplicateRate > 0 && c.DecideConfig.EnrollDuplicateRate < 1) {
		bad("ENROLL_DUPLICATE_RATE", "%g not in (0,1)", c.DecideConfig.EnrollDuplicateRate)
	}
	if c.DecideConfig.VisitGap <= 0 || c.DecideConfig.VisitGap > time.Minute {
		bad("VISIT_GAP", "%s not in (0,1m]", c.DecideConfig.VisitGap)
	}
	if c.DecideConfig.VisitLimit <= 0 || c.DecideConfig.VisitLimit > time.Hour {
		bad("VISIT_TIMEOUT", "%s not in (0,1h]", c.DecideConfig.VisitLimit)
	}
	if c.DecideConfig.Mode != "1:N" && c.DecideConfig.Mode != "1:1" {
		bad("MODE", "%q is not 1:N or 1:1", c.DecideConfig.Mode)
	}
	if c.DecideConfig.AgreeM < 1 || c.DecideConfig.AgreeM > 100 {
		bad("AGREE_M", "%d not in 1..100", c.DecideConfig.AgreeM)
	}
	if c.DecideConfig.AgreeN < 1 || c.DecideConfig.AgreeN > c.DecideConfig.AgreeM {
		bad("AGREE_N", "%d not in 1..AGREE_M (%d)", c.DecideConfig.AgreeN, c.DecideConfig.AgreeM)
	}
	for name, d := range map[string]time.Duration{"COOLDOWN": c.DecideConfig.Cooldown, "CLAIM_TIMEOUT": c.DecideConfig.ClaimTimeout, "UNKNOWN_INTERVAL": c.DecideConfig.UnknownInterval} {
		if d < 0 || d > 24*time.Hour {
			bad(name, "%s not in 0..24h", d)
		}
	}
	if c.DecideConfig.ClaimTimeout == 0 {
		bad("CLAIM_TIMEOUT", "must be positive")
	}
	if c.QualityConfig.MinInterOcular < 0 || c.QualityConfig.MinSharpness < 0 {
		bad("QUALITY_MIN_IOD", "quality minimums must not be negative")
	}
	for name, v := range map[string]float64{"QUALITY_MAX_YAW": c.QualityConfig.MaxYaw, "QUALITY_MAX_PITCH": c.QualityConfig.MaxPitch, "QUALITY_MAX_ROLL": c.QualityConfig.MaxRoll} {
		if v <= 0 || v > 90 {
			bad(name, "%g not in (0,90]", v)
		}
	}
	if t := c.TrackThreshold; math.IsNaN(t) || t < 0 || t > 255 {
		bad("TRACK_THRESHOLD", "%g not in 0..255 (0 = off)", t)
	}
	if c.TrackMaxFrames < 1 || c.TrackMaxFrames > track.MaxMaxFrames {
		bad("TRACK_MAX_FRAMES", "%d not in 1..%d", c.TrackMaxFrames, track.MaxMaxFrames)
	}
	if c.TrackMaxAge < 0 {
		bad("TRACK_MAX_AGE", "%s is negative", c.TrackMaxAge)
	}
	c.MQTT.DeviceID = c.DeviceID
	if c.ModelsConfig.Calibration == "" {
		c.ModelsConfig.Calibration = filepath.Join(c.ModelsConfig.Dir, "decision.json")
	}
	if c.MQTT.OutboxDir == "" {
		c.MQTT.OutboxDir = filepath.Join(c.StateDir, "outbox")
	}
	if c.Embedded && len(c.MQTT.Brokers) == 0 {
		c.MQTT.Brokers = []string{"tcp://" + c.EmbeddedAddr}
	}
	if len(c.MQTT.Brokers) == 0 {
		bad("MQTT_BROKERS", "no broker: set a URL such as ssl://broker:8883, or FACEGATE_MQTT_EMBEDDED=true")
	}
	for _, b := range c.MQTT.Brokers {
		if u, err := url.Parse(b); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				bad("MQTT_BROKERS", "%q must not carry a password; use FACEGATE_MQTT_PASSWORD_FILE", redactURL(b))
			}
		}
	}
	if err := c.MQTT.Validate(); err != nil {
		bad("MQTT", "%s", redactText(err.Error()))
	}
	if c.MetricsAddr != "" {
		if err := metrics.ValidateAddr(c.MetricsAddr); err != nil {
			bad("METRICS_ADDR", "%v (empty turns metrics off)", err)
		}
	}
	if c.KeysConfig.EnrollKeys == "" || c.KeysConfig.GalleryKey == "" {
		bad("GALLERY_KEY", "key locations must be set")
	}
	c.SiteConfig.validate(c.DeviceID, bad)
	c.PADConfig.validate(c.ModelsConfig.Dir, bad)
	if len(errs) > 0 {
		sort.Strings(errs)
		return fmt.Errorf("%w:\n  %s", ErrConfig, strings.Join(errs, "\n  "))
	}
	return nil
}

func validTopicLevel(s string) bool {
	return s != "" && !strings.ContainsAny(s, "/+#  \t\n\x00")
}

// redactText masks anything URL-shaped with a password in a message.
func redactText(s string) string {
	words := strings.Fields(s)
	for i, w := range words {
		if strings.Contains(w, "://") && strings.Contains(w, "@") {
			words[i] = redactURL(strings.Trim(w, `"',;`))
		}
	}
	return strings.Join(words, " ")
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// Print writes the effective configuration, one variable a line, with
// secrets redacted (there should be none: secrets live in files, but a URL
// with a password is masked all the same).
func (c *Config) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tVALUE\tMEANING")
	var walk func(v reflect.Value, prefix string)
	walk = func(v reflect.Value, prefix string) {
		t := v.Type()
		for i := range t.NumField() {
			f, fv := t.Field(i), v.Field(i)
			tag := f.Tag.Get("envconfig")
			if tag == "-" || !f.IsExported() {
				continue
			}
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
				p := prefix
				if !f.Anonymous {
					if tag == "" {
						tag = strings.ToUpper(f.Name)
					}
					p = prefix + tag + "_"
				}
				walk(fv, p)
				continue
			}
			if tag == "" {
				tag = strings.ToUpper(f.Name)
			}
			name := prefix + tag
			val := fmt.Sprint(fv.Interface())
			if fv.Kind() == reflect.Slice {
				parts := make([]string, fv.Len())
				for j := range parts {
					parts[j] = redactURL(fmt.Sprint(fv.Index(j).Interface()))
				}
				val = strings.Join(parts, ",")
			}
			lower := strings.ToLower(name)
			if (strings.Contains(lower, "password") || strings.Contains(lower, "secret")) && !strings.HasSuffix(name, "_FILE") {
				val = "[redacted]"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", name, val, f.Tag.Get("desc"))
		}
	}
	walk(reflect.ValueOf(*c), EnvPrefix+"_")
	return tw.Flush()
}
