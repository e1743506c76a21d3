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
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/facegate/facegate/capture"
	"github.com/facegate/facegate/capture/sources"
	"github.com/facegate/facegate/daemon/auth"
	"github.com/facegate/facegate/daemon/metrics"
	"github.com/facegate/facegate/daemon/mqtt"
	"github.com/facegate/facegate/daemon/sdnotify"
	"github.com/facegate/facegate/enroll"
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
	det, emb *infer.Model
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
	path, err := Resolve(nameOrPath)
	if err != nil {
		return nil, fmt.Errorf("FACEGATE_GALLERY_KEY: %w", err)
	}
	ring, err := auth.LoadKeyRing(path)
	if err != nil {
		return nil, fmt.Errorf("FACEGATE_GALLERY_KEY: %w", err)
	}
	var keys []store.Key
	for _, k := range ring.Keys() {
		sk, err := store.NewKey(k.ID, k.Secret())
		if err != nil {
			return nil, fmt.Errorf("FACEGATE_GALLERY_KEY: %w", err)
		}
		keys = append(keys, sk)
	}
	return keys, nil
}

// GalleryPath is the gallery database in the state directory.
func GalleryPath(stateDir string) string { return filepath.Join(stateDir, "gallery.db") }

// LoadModels loads the detector and embedder, refusing untrained weights
// unless allowed, and returns the threshold calibrated for targetFMR.
func LoadModels(cfg ModelsConfig, targetFMR float64) (det, emb *infer.Model, th manifest.Threshold, err error) {
	opts := infer.Options{IntraOpThreads: cfg.IntraOpThreads, InterOpThreads: cfg.InterOpThreads,
		GPU: infer.GPUOptions{VisibleDevices: cfg.GPUDevices, AllowGrowth: cfg.GPUAllowGrowth, MemoryFraction: cfg.GPUMemFraction}}
	det, err = infer.Load(filepath.Join(cfg.Dir, cfg.Detector), opts)
	if err != nil {
		return nil, nil, th, err
	}
	emb, err = infer.Load(filepath.Join(cfg.Dir, cfg.Embedder), opts)
	if err != nil {
		det.Close()
		return nil, nil, th, err
	}
	man := emb.Manifest()
	if man.Weights == manifest.WeightsUntrained && !cfg.AllowUntrained {
		det.Close()
		emb.Close()
		return nil, nil, th, fmt.Errorf("%w (%s %s): it cannot recognise anyone; load a pretrained model, or set FACEGATE_ALLOW_UNTRAINED=true for benchmarks and tests only", ErrUntrained, man.Name, man.Version)
	}
	th, ok := man.ThresholdFor(targetFMR, string(man.Metric))
	if !ok {
		det.Close()
		emb.Close()
		return nil, nil, th, fmt.Errorf("%w for FMR %g in %s's manifest (has %d thresholds): run `make calibrate` or pick FACEGATE_TARGET_FMR among the calibrated ones", ErrNotCalibrated, targetFMR, man.Name, len(man.Thresholds))
	}
	return det, emb, th, nil
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
	if s.det, s.emb, s.thresh, err = LoadModels(cfg.ModelsConfig, cfg.TargetFMR); err != nil {
		return err
	}
	man := s.emb.Manifest()
	log.Info("models loaded", "detector", s.det.Manifest().Name, "embedder", man.Name, "version", man.Version,
		"weights", man.Weights, "threshold", s.thresh.Value, "score", s.thresh.Score, "fmr", s.thresh.FMR,
		"calibrated_on", s.thresh.Dataset, "took", time.Since(start).Round(time.Millisecond))
	s.modelsLoaded(time.Since(start))
	det, err := infer.NewDetector(s.det, infer.DetectorConfig{})
	if err != nil {
		return err
	}
	emb, err := infer.NewEmbedder(s.emb)
	if err != nil {
		return err
	}
	s.pipe = &infer.Pipeline{Det: det, Emb: emb, PadRetry: 0.25}

	// Gallery.
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("FACEGATE_STATE_DIR: %w", err)
	}
	s.st, err = store.Open(GalleryPath(cfg.StateDir), gkeys[0], store.Options{OldKeys: gkeys[1:], Logger: log.With("component", "gallery")})
	if err != nil {
		return err
	}
	sc, err := enroll.NewScorer(man)
	if err != nil {
		return err
	}
	s.gallery, err = OpenGallery(s.st, sc, store.Model{Name: man.Name, Version: man.Version}, log.With("component", "gallery"))
	if err != nil {
		return err
	}
	log.Info("gallery open", "people", s.gallery.Len())

	// Stats.
	hi := s.thresh.Score == string(manifest.MetricCosine) || s.thresh.Score == "probability"
	edges := mqtt.LinearEdges(0, 2, 40)
	if hi {
		edges = mqtt.LinearEdges(0, 1, 20)
	}
	s.acc = mqtt.NewAccumulator(time.Now(), mqtt.AccumulatorOptions{Edges: edges})
	s.acc.SetOperatingPoint(s.thresh.Value, s.thresh.FMR, hi, mqtt.ModelRef{ID: man.Name, Version: man.Version})
	s.updateGalleryStats()

	// Engine.
	q := quality.Thresholds{MinInterOcular: cfg.MinInterOcular, MinSharpness: cfg.MinSharpness, MaxYaw: cfg.MaxYaw,
		MaxPitch: cfg.MaxPitch, MaxRoll: cfg.MaxRoll, MinMeanLuma: 40, MaxMeanLuma: 220, MaxClipped: 0.25}
	s.progress = sdnotify.NewProgress(30*time.Second, nil)
	s.engine, err = NewEngine(EngineConfig{
		Pipe: s.pipe, Gallery: s.gallery, Threshold: s.thresh, Quality: q, Log: log.With("component", "engine"),
		Decider: NewDecider(DeciderConfig{AgreeN: cfg.AgreeN, AgreeM: cfg.AgreeM, Cooldown: cfg.Cooldown,
			UnknownInterval: cfg.UnknownInterval, HigherIsMatch: hi, IdentifyOpen: cfg.Mode == "1:N"}),
		Emit: s.emit, Progress: s.progress, Observe: s.observe, KeepFrames: cfg.IncludeImage,
		Track: cfg.TrackConfig.Track(),
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
		Enroll:       s.countedEnroll,
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
	return nil
}

// Close releases everything NewService opened.
func (s *Service) Close() {
	s.stopMetrics()
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
	if s.emb != nil {
		s.emb.Close()
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
	man := s.emb.Manifest()
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
	if d.Subject != "" && (d.Verdict != Unknown) {
		ev.Subject = &mqtt.Subject{ID: d.Subject, Name: s.gallery.Name(d.Subject)}
	}
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
	s.log.Info("decision", "event", pub.ID, "seq", pub.Seq, "decision", pub.Decision, "reason", pub.Reason, "mode", pub.Mode,
		"subject", d.Subject, "score", pub.Score, "threshold", pub.Threshold, "latency_ms", pub.LatencyMS)
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
	if s.fta.frame(r) {
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
// itself at the current threshold.
func (s *Service) updateGalleryStats() {
	sc := enroll.Scorer{Metric: s.emb.Manifest().Metric, Dim: s.emb.Manifest().EmbeddingDim, Head: s.emb.Manifest().Head}
	hi := s.thresh.Score != string(manifest.MetricEuclidean)
	edges := mqtt.LinearEdges(0, 2, 40)
	if hi {
		edges = mqtt.LinearEdges(0, 1, 20)
	}
	est := mqtt.EstimateGallery(s.gallery.Templates(), func(a, b []float32) float64 {
		return scoreValue(sc.Compare(a, b), s.thresh)
	}, mqtt.GalleryOptions{Threshold: s.thresh.Value, HigherIsMatch: hi, Edges: edges})
	s.acc.SetGallery(est)
}

func (s *Service) handleClaim(ctx context.Context, c *mqtt.Claim) {
	timeout := s.cfg.ClaimTimeout
	if err := s.engine.Claim(ctx, Claim{ID: c.RequestID, Subject: c.SubjectID, Deadline: time.Now().Add(timeout)}); err != nil {
		s.log.Warn("claim dropped", "claim", c.RequestID, "err", err)
	}
}
