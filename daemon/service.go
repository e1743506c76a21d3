package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"image/jpeg"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/facegate/facegate/capture"
	"github.com/facegate/facegate/capture/sources"
	"github.com/facegate/facegate/daemon/auth"
	"github.com/facegate/facegate/daemon/metrics"
	"github.com/facegate/facegate/daemon/mqtt"
	"github.com/facegate/facegate/daemon/sdnotify"
	"github.com/facegate/facegate/decision"
	"github.com/facegate/facegate/enroll/store"
	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/align"
	"github.com/facegate/facegate/infer/manifest"
	"github.com/facegate/facegate/infer/quality"
)

// ShutdownTimeout bounds how long a stopping daemon waits for its parts.
const ShutdownTimeout = 15 * time.Second

// ErrUntrained is returned when the embedder has untrained weights and
// FACEGATE_ALLOW_UNTRAINED is not set.
var ErrUntrained = errors.New("the embedding model has untrained weights")

// ErrNotCalibrated is returned when the embedder's manifest has no
// threshold for the configured false-match rate.
var ErrNotCalibrated = errors.New("no calibrated threshold")

// Service is the running gate: one struct that wires the subsystems.
type Service struct {
	cfg      *Config
	log      *slog.Logger
	version  string
	det      *infer.Model
	embs     []*infer.Model // one per tower
	towers   []*Tower
	fusion   *Fusion
	rule     atomic.Pointer[VisitRule] // 1:N rule for the current gallery size
	pipe     *infer.Pipeline
	st       *store.Store
	gallery  *Gallery
	engine   *Engine
	thresh   manifest.Threshold
	acc      *mqtt.Accumulator
	client   *mqtt.Client
	verifier *auth.Verifier
	broker   *mqtt.Embedded
	notifier *sdnotify.Notifier
	progress *sdnotify.Progress
	src      capture.Source
	latest   *capture.Latest
	capMet   *capture.Metrics
	fta      ftaTracker
	met      *metrics.Metrics // Prometheus side: observability.go
	metSrv   *metrics.Server
	site     *siteGate  // nil on a single gate: site.go
	pad      *infer.PAD // passive PAD; nil unless FACEGATE_PAD is passive or both
	padClose func()
	padPol   *PADPolicy // nil with FACEGATE_PAD=off

	firstFrame chan struct{}
	firstOnce  sync.Once
}

// Resolve returns the path of a secret given as a file path or as the name
// of a systemd credential ($CREDENTIALS_DIRECTORY/name).
func Resolve(nameOrPath string) (string, error) {
	if strings.ContainsRune(nameOrPath, '/') {
		return nameOrPath, nil
	}
	p, err := auth.CredentialPath(nameOrPath)
	if err != nil {
		return "", fmt.Errorf("%q is neither a file path nor an available systemd credential: %w", nameOrPath, err)
	}
	return p, nil
}

// GalleryKeys loads the gallery's key ring from FACEGATE_GALLERY_KEY (a
// file or a systemd credential): the first key seals, all of them open.
func GalleryKeys(nameOrPath string) ([]store.Key, error) {
	return storeKeyRing("FACEGATE_GALLERY_KEY", nameOrPath)
}

// storeKeyRing loads an AES-256 key ring (a file or a systemd credential)
// for enroll/store, naming variable in its errors.
func storeKeyRing(variable, nameOrPath string) ([]store.Key, error) {
	path, err := Resolve(nameOrPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", variable, err)
	}
	ring, err := auth.LoadKeyRing(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", variable, err)
	}
	return storeKeys(variable, ring)
}

// storeKeys converts a loaded key ring into enroll/store's AES keys.
func storeKeys(variable string, ring *auth.KeyRing) ([]store.Key, error) {
	var keys []store.Key
	for _, k := range ring.Keys() {
		sk, err := store.NewKey(k.ID, k.Secret())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", variable, err)
		}
		keys = append(keys, sk)
	}
	return keys, nil
}

// GalleryPath is the gallery database in the state directory.
func GalleryPath(stateDir string) string { return filepath.Join(stateDir, "gallery.db") }

// LoadModels loads the detector, the decision calibration and the towers
// (cfg.Embedders), refusing untrained weights unless allowed, and returns
// the first tower's per-comparison threshold for targetFMR (1:1 claims).
// The caller closes det and every model of embs.
func LoadModels(cfg ModelsConfig, targetFMR float64) (det *infer.Model, towers []*Tower, embs []*infer.Model, cal *decision.Calibration, th manifest.Threshold, err error) {
	opts := infer.Options{IntraOpThreads: cfg.IntraOpThreads, InterOpThreads: cfg.InterOpThreads,
		GPU: infer.GPUOptions{VisibleDevices: cfg.GPUDevices, AllowGrowth: cfg.GPUAllowGrowth, MemoryFraction: cfg.GPUMemFraction}}
	if cal, err = decision.Load(cfg.Calibration); err != nil {
		return nil, nil, nil, nil, th, fmt.Errorf("FACEGATE_CALIBRATION: %w", err)
	}
	det, err = infer.Load(filepath.Join(cfg.Dir, cfg.Detector), opts)
	if err != nil {
		return nil, nil, nil, nil, th, err
	}
	towers, embs, err = LoadTowers(cfg, cal, opts)
	if err != nil {
		det.Close()
		return nil, nil, nil, nil, th, err
	}
	man := towers[0].Emb.Model().Manifest()
	th, ok := man.ThresholdFor(targetFMR, string(man.Metric))
	if !ok {
		det.Close()
		for _, m := range embs {
			m.Close()
		}
		return nil, nil, nil, nil, th, fmt.Errorf("%w for FMR %g in %s's manifest (has %d thresholds): run `make calibrate` or pick FACEGATE_TARGET_FMR among the calibrated ones", ErrNotCalibrated, targetFMR, man.Name, len(man.Thresholds))
	}
	return det, towers, embs, cal, th, nil
}

// NewService opens everything the gate needs, in order, and fails before
// anything runs if a part is missing: Preflight first (every configuration
// and file problem at once, a *StartupError), then what only opening can
// show. On error, what was opened is closed again. Close releases what it
// opened.
func NewService(cfg *Config, version string, log *slog.Logger) (*Service, error) {
	if err := Preflight(cfg); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: log, version: version, notifier: sdnotify.FromEnv(), firstFrame: make(chan struct{})}
	if err := s.open(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// NonceJournalPath is the file of accepted request nonces in the state
// directory (replay protection across restarts).
func NonceJournalPath(stateDir string) string { return filepath.Join(stateDir, "request-nonces") }

func (s *Service) open() (err error) {
	cfg, log := s.cfg, s.log

	// Secrets first: a gate without keys must not start.
	enrollPath, err := Resolve(cfg.EnrollKeys)
	if err != nil {
		return fmt.Errorf("FACEGATE_ENROLL_KEYS: %w", err)
	}
	ring, err := auth.LoadKeyRing(enrollPath)
	if err != nil {
		return fmt.Errorf("FACEGATE_ENROLL_KEYS: %w", err)
	}
	gkeys, err := GalleryKeys(cfg.GalleryKey)
	if err != nil {
		return err
	}
	if cfg.MQTT.PasswordFile != "" {
		if cfg.MQTT.PasswordFile, err = Resolve(cfg.MQTT.PasswordFile); err != nil {
			return fmt.Errorf("FACEGATE_MQTT_PASSWORD_FILE: %w", err)
		}
	}
	if cfg.MQTT.KeyFile != "" {
		if cfg.MQTT.KeyFile, err = Resolve(cfg.MQTT.KeyFile); err != nil {
			return fmt.Errorf("FACEGATE_MQTT_KEY_FILE: %w", err)
		}
	}

	// Metrics: /readyz says what the gate waits for while it loads.
	s.startMetrics()

	// Models.
	start := time.Now()
	var cal *decision.Calibration
	if s.det, s.towers, s.embs, cal, s.thresh, err = LoadModels(cfg.ModelsConfig, cfg.TargetFMR); err != nil {
		return err
	}
	if s.fusion, err = NewFusion(cal, s.towers); err != nil {
		return fmt.Errorf("FACEGATE_CALIBRATION: %w", err)
	}
	log.Info("models loaded", "detector", s.det.Manifest().Name, "embedders", strings.Join(cfg.Embedders, ","), "towers", s.fusion.Key(),
		"calibration", cfg.Calibration, "target_fpir", cfg.TargetFPIR, "claim_threshold", s.thresh.Value, "claim_score", s.thresh.Score, "claim_fmr", s.thresh.FMR,
		"took", time.Since(start).Round(time.Millisecond))
	s.modelsLoaded(time.Since(start))
	det, err := infer.NewDetector(s.det, infer.DetectorConfig{})
	if err != nil {
		return err
	}
	s.pipe = &infer.Pipeline{Det: det, Emb: s.towers[0].Emb, PadRetry: 0.25}

	// Gallery.
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("FACEGATE_STATE_DIR: %w", err)
	}
	s.st, err = store.Open(GalleryPath(cfg.StateDir), gkeys[0], store.Options{OldKeys: gkeys[1:], Logger: log.With("component", "gallery")})
	if err != nil {
		return err
	}
	var gts []GalleryTower
	for _, t := range s.towers {
		gts = append(gts, GalleryTower{Model: t.Store, Scorer: t.Scorer})
	}
	s.gallery, err = OpenGallery(s.st, gts, log.With("component", "gallery"))
	if err != nil {
		return err
	}
	log.Info("gallery open", "people", s.gallery.Len())

	// Stats: 1:N scores are fused logits against the per-visit threshold;
	// 1:1-only gates keep the first tower's per-comparison scores.
	hi := s.thresh.Score == string(manifest.MetricCosine) || s.thresh.Score == "probability"
	edges := mqtt.LinearEdges(0, 2, 40)
	if hi {
		edges = mqtt.LinearEdges(0, 1, 20)
	}
	if cfg.Mode == "1:N" {
		edges = mqtt.LinearEdges(-20, 20, 40)
	}
	s.acc = mqtt.NewAccumulator(time.Now(), mqtt.AccumulatorOptions{Edges: edges})
	if err := s.updateRule(); err != nil {
		return err
	}
	s.updateGalleryStats()

	// Engine.
	q := quality.Thresholds{MinInterOcular: cfg.MinInterOcular, MinSharpness: cfg.MinSharpness, MaxYaw: cfg.MaxYaw,
		MaxPitch: cfg.MaxPitch, MaxRoll: cfg.MaxRoll, MinMeanLuma: 40, MaxMeanLuma: 220, MaxClipped: 0.25}
	s.progress = sdnotify.NewProgress(30*time.Second, nil)
	if err := s.openPAD(); err != nil {
		return err
	}
	var visits *VisitDecider
	if cfg.Mode == "1:N" {
		visits = NewVisitDecider(VisitDeciderConfig{Visit: VisitConfig{Gap: cfg.VisitGap, Timeout: cfg.VisitLimit},
			Cooldown: cfg.Cooldown, UnknownInterval: cfg.UnknownInterval, Rule: func() VisitRule { return *s.rule.Load() },
			PAD: s.padPol, Log: log.With("component", "visits")})
	}
	var padScorer PADScorer
	if s.pad != nil {
		padScorer = s.pad
	}
	s.engine, err = NewEngine(EngineConfig{
		Pipe: s.pipe, Towers: s.towers, Fusion: s.fusion, Gallery: s.gallery, Visits: visits,
		Threshold: s.thresh, Quality: q, Log: log.With("component", "engine"),
		Decider: NewDecider(DeciderConfig{AgreeN: cfg.AgreeN, AgreeM: cfg.AgreeM, Cooldown: cfg.Cooldown,
			UnknownInterval: cfg.UnknownInterval, HigherIsMatch: s.thresh.Score != string(manifest.MetricEuclidean),
			PAD: s.padPol, Log: log.With("component", "claims")}),
		Emit: s.emit, Progress: s.progress, Observe: s.observe, KeepFrames: cfg.IncludeImage,
		Track: cfg.TrackConfig.Track(), PAD: padScorer,
	})
	if err != nil {
		return err
	}
	s.fta = ftaTracker{n: cfg.AgreeN, interval: cfg.UnknownInterval}

	// Camera.
	s.capMet = capture.NewMetrics()
	ccfg := capture.DefaultConfig()
	ccfg.Device, ccfg.Format, ccfg.Width, ccfg.Height, ccfg.FPS, ccfg.Loop = cfg.Source, cfg.Format, cfg.Width, cfg.Height, float64(cfg.FPS), cfg.Loop
	if cfg.FPS < 0 {
		ccfg.FPS = capture.FPSMax
	}
	var kind sources.Kind
	s.src, kind, err = sources.Open(ccfg, s.capMet, log.With("component", "capture"))
	if err != nil {
		return fmt.Errorf("FACEGATE_CAMERA: %w", err)
	}
	log.Info("camera open", "source", cfg.Source, "kind", kind)
	// Latest decodes in the grab stage and skips (and counts) corrupt frames.
	s.latest = capture.NewLatest(s.src, capture.LatestOptions{Metrics: s.capMet, Decode: true, Logger: log.With("component", "capture")})

	// MQTT.
	mcfg := cfg.MQTT
	mcfg.Version = s.version
	mcfg.EventImages = cfg.IncludeImage
	s.verifier, err = auth.NewVerifier(ring, auth.VerifierOptions{Journal: NonceJournalPath(cfg.StateDir)})
	if err != nil {
		return fmt.Errorf("FACEGATE_STATE_DIR: %w", err)
	}
	s.client, err = mqtt.New(mcfg, mqtt.Handlers{
		Enroll:       s.siteEnroll(s.countedEnroll),
		Claim:        s.handleClaim,
		Feedback:     func(_ context.Context, f *mqtt.Feedback) { s.acc.Feedback(*f) },
		Authenticate: mqtt.VerifyWith(s.verifier, cfg.DeviceID),
		Admit:        mqtt.AdmitWith(s.verifier, cfg.DeviceID),
		Stats:        s.stats,
	}, log)
	if err != nil {
		return err
	}
	s.wireMetrics()
	return s.openSite()
}

// Close releases everything NewService opened.
func (s *Service) Close() {
	s.stopMetrics()
	s.closeSite()
	if s.latest != nil {
		s.latest.Close()
	} else if s.src != nil {
		s.src.Close()
	}
	if s.st != nil {
		s.st.Close()
	}
	if s.det != nil {
		s.det.Close()
	}
	if s.padClose != nil {
		s.padClose()
	}
	for _, m := range s.embs {
		m.Close()
	}
	if s.broker != nil {
		s.broker.Close()
	}
	if s.verifier != nil {
		s.verifier.Close()
	}
}

// Run runs the gate until ctx ends: the embedded broker (if any) and MQTT
// first (sinks before sources), then the engine. READY=1 goes to systemd
// once the models are loaded (NewService), the camera has delivered a frame
// and MQTT is connected or retrying; WATCHDOG=1 only while frames and
// inferences progress. On stop, the camera and engine stop first, then
// MQTT, within ShutdownTimeout.
func (s *Service) Run(ctx context.Context) error {
	if s.cfg.Embedded {
		var err error
		s.broker, err = mqtt.StartEmbedded(ctx, s.cfg.EmbeddedAddr, mqtt.EmbeddedOptions{Logger: s.log.With("component", "broker")})
		if err != nil {
			return fmt.Errorf("embedded broker: %w", err)
		}
		s.log.Info("embedded broker listening", "addr", s.broker.Addr())
	}
	mqttCtx, stopMQTT := context.WithCancel(context.WithoutCancel(ctx))
	defer stopMQTT()
	mqttDone := make(chan error, 1)
	go func() { mqttDone <- s.client.Run(mqttCtx) }()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.engine.Run(gctx, frameTap{s.latest, s}) })
	g.Go(func() error { return s.readyAndWatch(gctx) })
	g.Go(func() error { return s.runSite(gctx) })
	err := g.Wait()

	s.notifier.Stopping()
	s.log.Info("stopping", "reason", stopReason(ctx, err))
	// Producers are stopped; let MQTT drain what it can, then stop it.
	stopMQTT()
	select {
	case merr := <-mqttDone:
		if merr != nil && !errors.Is(merr, context.Canceled) {
			s.log.Warn("mqtt stopped", "err", merr)
		}
	case <-time.After(ShutdownTimeout):
		s.log.Error("mqtt did not stop in time", "timeout", ShutdownTimeout)
	}
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		return nil
	}
	return err
}

func stopReason(ctx context.Context, err error) string {
	if ctx.Err() != nil {
		return "signal"
	}
	if err != nil {
		return err.Error()
	}
	return "done"
}

// frameTap marks the first frame for READY.
type frameTap struct {
	src FrameSource
	s   *Service
}

func (t frameTap) Next(ctx context.Context) (capture.Frame, error) {
	f, err := t.src.Next(ctx)
	if err == nil {
		t.s.firstOnce.Do(func() { close(t.s.firstFrame) })
	}
	return f, err
}

func (s *Service) readyAndWatch(ctx context.Context) error {
	select {
	case <-s.firstFrame:
	case <-ctx.Done():
		return nil
	}
	s.met.CameraDelivered()
	// MQTT is connected or retrying in the background by now.
	if _, err := s.notifier.Ready(); err != nil {
		s.log.Warn("sd_notify READY failed", "err", err)
	}
	s.log.Info("ready", "mqtt_connected", s.client.Connected(), "people", s.gallery.Len())
	interval, err := sdnotify.WatchdogInterval()
	if err != nil {
		return err
	}
	if interval == 0 {
		<-ctx.Done()
		return nil
	}
	return sdnotify.NewWatchdog(s.notifier, s.log.With("component", "watchdog")).Run(ctx, interval, s.progress.Check)
}

// emit turns a decision into an event, publishes it through the outbox and
// records it in the stats.
func (s *Service) emit(d Decision, fi *FaceInfo) {
	man := s.towers[0].Emb.Model().Manifest()
	ev := mqtt.Event{
		ID:            newEventID(),
		Time:          d.Time.UTC(),
		Decision:      mqtt.Decision(d.Verdict),
		Reason:        d.Reason,
		Mode:          mqtt.Mode(d.Mode),
		ClaimID:       d.ClaimID,
		Score:         d.Best.Score,
		Threshold:     s.thresh.Value,
		HigherIsMatch: s.thresh.Score != string(manifest.MetricEuclidean),
		ThresholdFMR:  s.thresh.FMR,
		Model:         mqtt.ModelRef{ID: man.Name, Version: man.Version},
	}
	if d.Reason == "timeout_no_face" {
		ev.Reason = mqtt.ReasonFailureToAcquire
	}
	if math.IsNaN(ev.Score) {
		ev.Score = 0
	}
	if d.Subject != "" && d.Verdict != Unknown && d.Verdict != Ambiguous {
		ev.Subject = &mqtt.Subject{ID: d.Subject, Name: s.gallery.Name(d.Subject)}
	}
	if d.Visit != nil {
		s.visitFields(&ev, d)
	}
	ev.PAD = s.padField(d)
	if fi != nil {
		ev.Face = &mqtt.Box{X: int(fi.Box[0]), Y: int(fi.Box[1]), W: int(fi.Box[2] - fi.Box[0]), H: int(fi.Box[3] - fi.Box[1])}
		qs := qualityScore(fi.Quality)
		ev.Quality = &qs
		if !fi.Captured.IsZero() {
			ev.LatencyMS = float64(time.Since(fi.Captured).Microseconds()) / 1000
		}
		if s.cfg.IncludeImage && fi.Frame != nil && fi.Face != nil {
			ev.Image = s.faceJPEG(fi)
		}
	}
	s.countDecision(ev)
	pub, err := s.client.PublishEvent(ev)
	if err != nil {
		s.log.Error("event not queued", "event", ev.ID, "decision", ev.Decision, "err", err)
		return
	}
	s.acc.Observe(pub)
	s.siteEvent(pub)
	attrs := []any{"event", pub.ID, "seq", pub.Seq, "decision", pub.Decision, "reason", pub.Reason, "mode", pub.Mode,
		"subject", d.Subject, "score", pub.Score, "threshold", pub.Threshold, "latency_ms", pub.LatencyMS}
	if pub.PAD != nil {
		attrs = append(attrs, "pad", pub.PAD.Decision)
		if pub.PAD.Score != nil {
			attrs = append(attrs, "pad_score", *pub.PAD.Score)
		}
	}
	s.log.Info("decision", attrs...)
}

// visitFields fills in a 1:N decision's fused score, towers, rule and
// visit, and the candidates of an ambiguous one.
func (s *Service) visitFields(ev *mqtt.Event, d Decision) {
	v := d.Visit
	n := v.Rule.GallerySize
	ev.Threshold, ev.HigherIsMatch, ev.ThresholdFMR = v.Rule.Threshold, true, 0
	ev.GallerySize, ev.TargetFPIR = &n, v.Rule.FPIR
	req := v.Rule.Margin
	ev.RequiredMargin = &req
	ev.Model = mqtt.ModelRef{ID: strings.Join(s.cfg.Embedders, "+"), Version: v.Rule.Towers}
	if m := v.Margin(); !math.IsInf(m, 0) && !math.IsNaN(m) {
		ev.Margin = &m
	}
	if v.Best != nil {
		ev.Towers = s.towerScores(v.Best.Raw)
	}
	if d.Verdict == Ambiguous {
		for _, c := range []*VisitCandidate{v.Best, v.Second} {
			if c != nil {
				ev.Candidates = append(ev.Candidates, mqtt.Candidate{ID: c.ID, Name: s.gallery.Name(c.ID), Score: c.Logit, Towers: s.towerScores(c.Raw)})
			}
		}
	}
	ev.Visit = &mqtt.Visit{ID: v.ID, Frames: v.Frames, FramesSeen: v.Seen, End: string(v.End), Rejected: v.Rejected, LooksCarried: v.Carried}
	if !v.FirstGood.IsZero() {
		ev.Visit.DecisionMS = math.Max(0, float64(time.Since(v.FirstGood).Microseconds())/1000)
	}
}

func (s *Service) towerScores(raw []float64) []mqtt.TowerScore {
	var out []mqtt.TowerScore
	for i, r := range raw {
		if i < len(s.towers) && !math.IsNaN(r) {
			t := s.towers[i]
			out = append(out, mqtt.TowerScore{Model: t.Name(), Score: r, HigherIsMatch: t.Norm.Metric != decision.Euclidean})
		}
	}
	return out
}

// updateRule recomputes the 1:N rule for the current gallery size (at
// start, and through updateGalleryStats after every enrollment change) and
// the stats' operating point.
func (s *Service) updateRule() error {
	n := s.gallery.Len()
	r, err := s.fusion.Rule(n, s.cfg.TargetFPIR)
	if err != nil {
		return fmt.Errorf("FACEGATE_TARGET_FPIR: %w", err)
	}
	vr := &VisitRule{Rule: r, GallerySize: n, FPIR: s.cfg.TargetFPIR, Towers: s.fusion.Key()}
	if old := s.rule.Swap(vr); old == nil || old.Threshold != vr.Threshold {
		s.log.Info("1:N threshold", "gallery_size", n, "target_fpir", vr.FPIR, "threshold", vr.Threshold, "margin", vr.Margin, "max_frames", vr.MaxFrames, "towers", vr.Towers)
	}
	man := s.towers[0].Emb.Model().Manifest()
	if s.cfg.Mode == "1:N" {
		s.acc.SetOperatingPoint(vr.Threshold, 0, true, mqtt.ModelRef{ID: strings.Join(s.cfg.Embedders, "+"), Version: vr.Towers})
	} else {
		s.acc.SetOperatingPoint(s.thresh.Value, s.thresh.FMR, s.thresh.Score != string(manifest.MetricEuclidean), mqtt.ModelRef{ID: man.Name, Version: man.Version})
	}
	return nil
}

// qualityScore condenses a quality report to 0..1: the share of checks
// passed (the event's quality field; the full report is in the log).
func qualityScore(r quality.Report) float64 {
	const checks = 9
	return math.Max(0, float64(checks-len(r.Failures))/checks)
}

func (s *Service) faceJPEG(fi *FaceInfo) string {
	kps := make([]align.Point, len(fi.Face.Keypoints))
	for i, k := range fi.Face.Keypoints {
		kps[i] = align.Point{k.X, k.Y}
	}
	pts, err := s.pipe.Emb.Template().Select(kps, fi.Face.Names)
	if err != nil {
		return ""
	}
	chip, _, err := align.CropRGB(fi.Frame, pts, s.pipe.Emb.Template())
	if err != nil {
		return ""
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, chip, &jpeg.Options{Quality: 85}); err != nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// observe counts a processed frame (the stats' fps is frames analysed, not
// frames the camera offered) and feeds the failure-to-acquire tracker.
func (s *Service) observe(r FrameResult) {
	s.met.FrameAnalysed(r.Analysed, r.Faces, r.Acquired, r.Tracked)
	s.acc.Frame(r.Analysed, r.Tracked)
	// 1:N: each visit without a good frame publishes its own
	// failure_to_acquire event (visitdecide.go), counted when published.
	if s.cfg.Mode != "1:N" && s.fta.frame(r) {
		s.acc.Observe(mqtt.Event{Time: r.Analysed, Decision: mqtt.DecisionUnknown, Reason: mqtt.ReasonFailureToAcquire,
			LatencyMS: float64(r.Analysed.Sub(r.Captured).Microseconds()) / 1000})
	}
}

// ftaTracker counts a failure to acquire when N frames in a row show a
// face that fails the quality gate (someone at the door the gate cannot
// use), at most once per interval.
type ftaTracker struct {
	n        int
	interval time.Duration
	run      int
	last     time.Time
}

func (t *ftaTracker) frame(r FrameResult) bool {
	switch {
	case r.Acquired || r.Faces == 0:
		t.run = 0
		return false
	}
	t.run++
	if t.run < t.n || (!t.last.IsZero() && r.Analysed.Sub(t.last) < t.interval) {
		return false
	}
	t.run = 0
	t.last = r.Analysed
	return true
}

func (s *Service) stats() mqtt.Stats {
	st := s.acc.Snapshot(time.Now())
	st.GallerySubjects = s.gallery.Len()
	n := 0
	for _, p := range s.gallery.List() {
		n += p.Templates
	}
	st.GalleryTemplates = n
	if s.capMet != nil {
		c := s.capMet.Snapshot()
		st.Camera = &mqtt.CameraStats{FPSIn: c.FPSIn, FPSOut: c.FPSOut, Dropped: c.Dropped, Corrupt: c.Corrupt,
			DecodeMS: float64(c.DecodeMean.Microseconds()) / 1000, Outages: c.Outages, Reconnects: c.Reconnects, Connected: c.Connected}
	}
	return st
}

// updateGalleryStats re-estimates FMR and FNMR from the gallery against
// itself at the current threshold: per comparison on the first tower in
// 1:1-only mode, by the fused logit of one frame against the per-visit
// threshold in 1:N mode (people with templates of every tower only).
func (s *Service) updateGalleryStats() {
	if err := s.updateRule(); err != nil {
		s.log.Error("1:N threshold not updated", "people", s.gallery.Len(), "err", err)
	}
	if s.cfg.Mode != "1:N" {
		t := s.towers[0]
		hi := s.thresh.Score != string(manifest.MetricEuclidean)
		edges := mqtt.LinearEdges(0, 2, 40)
		if hi {
			edges = mqtt.LinearEdges(0, 1, 20)
		}
		est := mqtt.EstimateGallery(s.gallery.Templates(0), func(a, b []float32) float64 {
			return scoreValue(t.Scorer.Compare(a, b), s.thresh)
		}, mqtt.GalleryOptions{Threshold: s.thresh.Value, HigherIsMatch: hi, Edges: edges})
		s.acc.SetGallery(est)
		return
	}
	// Each template is the concatenation of one image's tower embeddings.
	joined := map[string][][]float32{}
	per := make([]map[string][][]float32, len(s.towers))
	for i := range s.towers {
		per[i] = s.gallery.Templates(i)
	}
	for id, first := range per[0] {
		ok := true
		for i := 1; i < len(per); i++ {
			ok = ok && len(per[i][id]) == len(first)
		}
		if !ok {
			continue
		}
		for j := range first {
			var v []float32
			for i := range per {
				v = append(v, per[i][id][j]...)
			}
			joined[id] = append(joined[id], v)
		}
	}
	raw := make([]float64, len(s.towers))
	est := mqtt.EstimateGallery(joined, func(a, b []float32) float64 {
		off := 0
		for i, t := range s.towers {
			d := t.Emb.Dim()
			raw[i] = t.Raw(t.Scorer.Compare(a[off:off+d], b[off:off+d]))
			off += d
		}
		l, _ := s.fusion.Logit(raw)
		return l
	}, mqtt.GalleryOptions{Threshold: s.rule.Load().Threshold, HigherIsMatch: true, Edges: mqtt.LinearEdges(-20, 20, 40)})
	s.acc.SetGallery(est)
}

func (s *Service) handleClaim(ctx context.Context, c *mqtt.Claim) {
	timeout := s.cfg.ClaimTimeout
	if err := s.engine.Claim(ctx, Claim{ID: c.RequestID, Subject: c.SubjectID, Deadline: time.Now().Add(timeout)}); err != nil {
		s.log.Warn("claim dropped", "claim", c.RequestID, "err", err)
	}
}
