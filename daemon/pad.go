package daemon

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/facegate/facegate/daemon/metrics"
	"github.com/facegate/facegate/daemon/mqtt"
	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/detect"
	"github.com/facegate/facegate/infer/imageio"
	"github.com/facegate/facegate/infer/manifest"
	"github.com/facegate/facegate/pad/challenge"
)

// Presentation-attack detection (PAD) in the door's decision (issue 16,
// docs/pad.md). Two methods, alone or together:
//
//   - passive: MiniFASNet scores the visit's face (p_real) on each analysed
//     frame while the visit is undecided; a grant needs the median p_real
//     of the visit's scored frames at or above the threshold calibrated
//     for FACEGATE_PAD_BPCER (models/calibration/pad.json).
//   - challenge: when the visit's identity evidence has cleared, a random
//     head-turn challenge is published on <prefix>/<device>/challenge and
//     checked on the visit's next frames (pad/challenge); the grant waits
//     for it to pass.
//
// An identity that cleared while PAD failed is published as
// decision "presentation_attack".

// PAD methods (FACEGATE_PAD).
const (
	PADOff       = "off"
	PADPassive   = "passive"
	PADChallenge = "challenge"
	PADBoth      = "both"
)

// PADConfig is FACEGATE_PAD*.
type PADConfig struct {
	PADMethod string `envconfig:"PAD" default:"passive" desc:"presentation-attack detection: off, passive (MiniFASNet p_real over the visit), challenge (a head turn asked on the challenge topic) or both (docs/pad.md)"`
	// PADBPCER is the operator's knob for passive PAD: the share of bona
	// fide frames it may call attacks; the p_real threshold follows from
	// the calibration.
	PADBPCER       float64  `envconfig:"PAD_BPCER" default:"0.05" desc:"passive PAD: target BPCER, the share of bona fide frames classified as attacks; it must be in the PAD calibration (0.05 or 0.01 as shipped)"`
	PADModels      []string `envconfig:"PAD_MODELS" default:"minifasnet-v2,minifasnet-v1se" desc:"passive PAD models (folders under FACEGATE_MODELS_DIR), their p_real averaged; must be those the calibration was made with"`
	PADCalibration string   `envconfig:"PAD_CALIBRATION" desc:"passive PAD thresholds by BPCER (default: pad.json in FACEGATE_MODELS_DIR, installed by make models from models/calibration/pad.json)"`
	PADMirrored    bool     `envconfig:"PAD_CHALLENGE_MIRRORED" default:"false" desc:"challenge: the camera's frames are mirrored (selfie view), so the subject's left is the image's left"`
}

// Passive reports whether MiniFASNet scores faces.
func (c PADConfig) Passive() bool { return c.PADMethod == PADPassive || c.PADMethod == PADBoth }

// Challenge reports whether visits must answer a head-turn challenge.
func (c PADConfig) Challenge() bool { return c.PADMethod == PADChallenge || c.PADMethod == PADBoth }

// validate reports FACEGATE_PAD* problems through bad and fills in the
// calibration's default path.
func (c *PADConfig) validate(modelsDir string, bad func(v, format string, args ...any)) {
	switch c.PADMethod {
	case PADOff, PADPassive, PADChallenge, PADBoth:
	default:
		bad("PAD", "%q is not off, passive, challenge or both", c.PADMethod)
	}
	if !(c.PADBPCER > 0 && c.PADBPCER < 1) {
		bad("PAD_BPCER", "%g not in (0,1)", c.PADBPCER)
	}
	if c.Passive() && len(c.PADModels) == 0 {
		bad("PAD_MODELS", "name the PAD models, e.g. minifasnet-v2,minifasnet-v1se")
	}
	for i, m := range c.PADModels {
		if m == "" || strings.ContainsAny(m, "/ ") || slices.Contains(c.PADModels[:i], m) {
			bad("PAD_MODELS", "%q: name each model folder once, comma-separated", m)
		}
	}
	if c.PADCalibration == "" {
		c.PADCalibration = filepath.Join(modelsDir, PADCalibrationFile)
	}
}

// PADCalibrationFile is the PAD calibration's name beside the models.
const PADCalibrationFile = "pad.json"

// PADCalibration is the passive PAD's threshold table: p_real thresholds
// by BPCER on bona fide frames, for one set of models and one detector
// (the score depends on the detector's box geometry).
type PADCalibration struct {
	Models     []string       `json:"models"`
	Detector   string         `json:"detector"`
	Source     string         `json:"source"`
	Thresholds []PADThreshold `json:"thresholds"`
}

// PADThreshold is one operating point: frames with p_real < PReal are
// called attacks, which rejects BPCER of the bona fide frames measured.
type PADThreshold struct {
	BPCER float64 `json:"bpcer"`
	PReal float64 `json:"p_real"`
	Faces int     `json:"faces"`
}

// LoadPADCalibration reads and checks a PAD calibration file.
func LoadPADCalibration(path string) (*PADCalibration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pad calibration: %w", err)
	}
	var c PADCalibration
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("pad calibration %s: %w", path, err)
	}
	if len(c.Models) == 0 || c.Detector == "" || len(c.Thresholds) == 0 {
		return nil, fmt.Errorf("pad calibration %s: models, detector and thresholds are required", path)
	}
	for _, t := range c.Thresholds {
		if !(t.BPCER > 0 && t.BPCER < 1) || !(t.PReal >= 0 && t.PReal <= 1) {
			return nil, fmt.Errorf("pad calibration %s: threshold %+v out of range", path, t)
		}
	}
	return &c, nil
}

// BPCERs lists the calibrated rates, for messages.
func (c *PADCalibration) BPCERs() string {
	var s []string
	for _, t := range c.Thresholds {
		s = append(s, fmt.Sprintf("%g", t.BPCER))
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

// Threshold returns the operating point calibrated for bpcer (equal
// within 1e-9 relative), for models and detector, or an error that says
// what is calibrated.
func (c *PADCalibration) Threshold(bpcer float64, models []string, detector string) (PADThreshold, error) {
	if !slices.Equal(c.Models, models) {
		return PADThreshold{}, fmt.Errorf("the PAD calibration is for models %s, not %s: recalibrate (docs/pad.md) or use its models",
			strings.Join(c.Models, ","), strings.Join(models, ","))
	}
	if c.Detector != detector {
		return PADThreshold{}, fmt.Errorf("the PAD calibration was made on %s boxes, not %s (p_real depends on the box geometry): recalibrate on %s (docs/pad.md) or set FACEGATE_PAD=challenge or off",
			c.Detector, detector, detector)
	}
	for _, t := range c.Thresholds {
		if math.Abs(t.BPCER-bpcer) <= 1e-9*bpcer {
			return t, nil
		}
	}
	return PADThreshold{}, fmt.Errorf("no p_real threshold calibrated for BPCER %g (calibrated: %s): pick one of those or calibrate on the site's frames (docs/pad.md)", bpcer, c.BPCERs())
}

// PADPolicy is the visit-level PAD rule the VisitDecider applies.
type PADPolicy struct {
	Method string // PADPassive, PADChallenge or PADBoth
	// Threshold is the p_real a visit's median must reach (passive, both)
	// and BPCER the rate it was calibrated for.
	Threshold, BPCER float64
	// MinFrames: a visit whose identity cleared but whose median p_real
	// stays under the threshold over this many scored frames is decided a
	// presentation attack (earlier frames may still lift the median).
	MinFrames int
	// Challenge is the head-turn rule, Issuer draws the challenges.
	Challenge challenge.Config
	Issuer    *challenge.Issuer
	// OnChallenge publishes a challenge issued to a visit; called from the
	// decide stage, it must not block.
	OnChallenge func(ch challenge.Challenge, visit uint64)
}

// DefaultPADMinFrames is PADPolicy.MinFrames's default.
const DefaultPADMinFrames = 5

// withDefaults returns p with MinFrames defaulted (a copy when it changes;
// nil stays nil).
func (p *PADPolicy) withDefaults() *PADPolicy {
	if p == nil || p.MinFrames > 0 {
		return p
	}
	c := *p
	c.MinFrames = DefaultPADMinFrames
	return &c
}

func (p *PADPolicy) passive() bool {
	return p != nil && (p.Method == PADPassive || p.Method == PADBoth)
}

func (p *PADPolicy) challenge() bool {
	return p != nil && (p.Method == PADChallenge || p.Method == PADBoth)
}

// PADReport is a decision's PAD result (the event's "pad").
type PADReport struct {
	Method string
	// Score is the median p_real over Frames scored frames (NaN when none
	// was scored), Threshold the p_real it needed.
	Score, Threshold, BPCER float64
	Frames                  int
	// Passed: every method in force passed; Attack: one failed (a grant
	// refused as a presentation attack). Neither: not decided (the visit
	// never cleared its identity, or no PAD runs).
	Passed, Attack bool
	// Challenge is the challenge issued to the visit and its result.
	Challenge *challenge.Challenge
	Result    challenge.Result
}

// median of the finite values of xs (NaN when none).
func median(xs []float64) (float64, int) {
	var v []float64
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return math.NaN(), 0
	}
	sort.Float64s(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2], n
	}
	return (v[n/2-1] + v[n/2]) / 2, n
}

// challengeHold is how long past the challenge's deadline a visit is kept
// open (its timeout suspended) so the deadline, not the visit's timeout,
// ends the challenge.
const challengeHold = 500 * time.Millisecond

// preflightPAD checks that passive PAD's models and calibration exist and
// that the calibration has a threshold for FACEGATE_PAD_BPCER with these
// models and this detector.
func preflightPAD(cfg *Config) []Problem {
	c := cfg.PADConfig
	if !c.Passive() {
		return nil
	}
	var ps []Problem
	for _, name := range c.PADModels {
		dir := filepath.Join(cfg.ModelsConfig.Dir, name)
		m, err := manifest.Read(dir)
		switch {
		case err != nil:
			ps = append(ps, Problem{Var: "PAD_MODELS", Path: dir, What: err.Error(),
				Fix: "export them (make models) or set " + EnvPrefix + "_PAD=off or challenge; models found: " + strings.Join(modelNames(cfg.ModelsConfig.Dir), ", ")})
		case m.Task != manifest.TaskPAD:
			ps = append(ps, Problem{Var: "PAD_MODELS", Path: dir, What: fmt.Sprintf("is a %s, not a PAD model", m.Task), Fix: "name minifasnet-v2,minifasnet-v1se"})
		}
	}
	cal, err := LoadPADCalibration(c.PADCalibration)
	if err != nil {
		return append(ps, Problem{Var: "PAD_CALIBRATION", Path: c.PADCalibration, What: err.Error(),
			Fix: "install models/calibration/pad.json beside the models (make models) or point " + EnvPrefix + "_PAD_CALIBRATION at it"})
	}
	if _, err := cal.Threshold(c.PADBPCER, c.PADModels, cfg.ModelsConfig.Detector); err != nil {
		ps = append(ps, Problem{Var: "PAD_BPCER", Path: c.PADCalibration, What: err.Error(), Fix: "use a calibrated FACEGATE_PAD_BPCER (docs/pad.md, calibrating at a site)"})
	}
	return ps
}

// openPAD loads passive PAD's models and threshold and the challenge's
// issuer as FACEGATE_PAD asks, and builds the visits' PAD policy.
func (s *Service) openPAD() error {
	c := s.cfg.PADConfig
	if c.PADMethod == PADOff {
		s.log.Warn("presentation-attack detection is off: a photo or a screen of an enrolled person is granted", "var", EnvPrefix+"_PAD")
		return nil
	}
	pol := &PADPolicy{Method: c.PADMethod, MinFrames: DefaultPADMinFrames, Challenge: challenge.DefaultConfig()}
	pol.Challenge.Mirrored = c.PADMirrored
	if c.Passive() {
		cal, err := LoadPADCalibration(c.PADCalibration)
		if err != nil {
			return fmt.Errorf("FACEGATE_PAD_CALIBRATION: %w", err)
		}
		th, err := cal.Threshold(c.PADBPCER, c.PADModels, s.det.Manifest().Name)
		if err != nil {
			return fmt.Errorf("FACEGATE_PAD_BPCER: %w", err)
		}
		pol.Threshold, pol.BPCER = th.PReal, th.BPCER
		mc := s.cfg.ModelsConfig
		opts := infer.Options{IntraOpThreads: mc.IntraOpThreads, InterOpThreads: mc.InterOpThreads,
			GPU: infer.GPUOptions{VisibleDevices: mc.GPUDevices, AllowGrowth: mc.GPUAllowGrowth, MemoryFraction: mc.GPUMemFraction}}
		dirs := make([]string, len(c.PADModels))
		for i, m := range c.PADModels {
			dirs[i] = filepath.Join(mc.Dir, m)
		}
		if s.pad, s.padClose, err = infer.OpenPAD(dirs, opts, infer.PADConfig{Detector: s.det.Manifest().Name}); err != nil {
			return fmt.Errorf("FACEGATE_PAD_MODELS: %w", err)
		}
		start := time.Now()
		if err := warmPAD(s.pad); err != nil {
			return fmt.Errorf("FACEGATE_PAD_MODELS: %w", err)
		}
		s.log.Debug("pad models warmed", "duration", time.Since(start))
	}
	if c.Challenge() {
		is, err := challenge.NewIssuer(pol.Challenge, nil)
		if err != nil {
			return fmt.Errorf("FACEGATE_PAD: %w", err)
		}
		pol.Issuer, pol.OnChallenge = is, s.publishChallenge
	}
	s.padPol = pol
	s.log.Info("presentation-attack detection", "method", pol.Method, "models", strings.Join(c.PADModels, ","),
		"p_real_threshold", pol.Threshold, "target_bpcer", pol.BPCER, "mirrored", c.PADMirrored)
	return nil
}

// warmPAD runs the PAD models once on a grey frame before the gate
// serves: TensorFlow's first run of a graph prepares it (1-5 s on 2 loaded
// cores, docs/benchmarks.md "PAD per visit"), which would otherwise land
// on the first visit's grant.
func warmPAD(p PADScorer) error {
	img := imageio.NewRGB(160, 160)
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	if _, err := p.Score(img, detect.Box{X0: 50, Y0: 40, X1: 110, Y1: 120}); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	return nil
}

// publishChallenge sends a visit's challenge to the door's display; a
// challenge that cannot be queued fails by its deadline (the person never
// saw it), which is logged here.
func (s *Service) publishChallenge(ch challenge.Challenge, visit uint64) {
	err := s.client.PublishChallenge(mqtt.Challenge{ID: ch.ID, Kind: string(ch.Kind), Issued: ch.Issued.UTC(), Deadline: ch.Deadline.UTC(), Visit: visit})
	if err != nil {
		s.log.Error("challenge not published", "challenge", ch.ID, "visit", visit, "err", err)
	}
}

// claimFrame completes a 1:1 observation with what the claim's PAD needs:
// the door's face and keypoints (the challenge's yaw track) and, while
// the decider asks for it, passive PAD's score of a good face.
func (e *Engine) claimFrame(a analysed, obs *Observation) {
	obs.PAD = math.NaN()
	if p := a.primary; p != nil {
		obs.Seen = true
		obs.Box, obs.Keypoints, obs.HasKeypoints = faceGeometry(p)
	}
	if e.PAD == nil || !obs.Face || a.face == nil || !e.Decider.WantsPAD() {
		return
	}
	start := time.Now()
	r, err := e.PAD.Score(a.img, a.face.Box)
	if err != nil {
		e.Log.Warn("pad not scored", "seq", a.frame.Seq, "err", err)
	} else {
		obs.PAD = r.PReal
	}
	e.stageDone(metrics.StagePAD, start)
}

// padField is the event's PAD result: nil with PAD off; not_checked for
// decisions PAD had no part in (no identity cleared, a claim denied).
func (s *Service) padField(d Decision) *mqtt.PAD {
	if s.padPol == nil {
		return nil
	}
	if d.PAD == nil {
		return &mqtt.PAD{Method: s.padPol.Method, Decision: mqtt.PADNotChecked}
	}
	return PADEvent(d.PAD)
}

// PADEvent turns a decision's PAD report into the event's field.
func PADEvent(r *PADReport) *mqtt.PAD {
	p := &mqtt.PAD{Method: r.Method, Frames: r.Frames, TargetBPCER: r.BPCER, Decision: mqtt.PADNotChecked}
	if !math.IsNaN(r.Score) {
		sc := r.Score
		p.Score = &sc
	}
	if r.Method == PADPassive || r.Method == PADBoth {
		th := r.Threshold
		p.Threshold = &th
	}
	switch {
	case r.Attack:
		p.Decision = mqtt.PADAttack
	case r.Passed:
		p.Decision = mqtt.PADBonaFide
	}
	if r.Challenge != nil {
		co := &mqtt.ChallengeOutcome{ID: r.Challenge.ID, Kind: string(r.Challenge.Kind), Status: string(r.Result.Status),
			Reason: string(r.Result.Reason), Peak: r.Result.Peak}
		if l := r.Result.Latency(*r.Challenge); l > 0 {
			co.LatencyMS = float64(l.Microseconds()) / 1000
		}
		p.Challenge = co
	}
	return p
}
