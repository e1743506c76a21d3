package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/facegate/facegate/capture"
	"github.com/facegate/facegate/daemon/metrics"
	"github.com/facegate/facegate/enroll"
	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/detect"
	"github.com/facegate/facegate/infer/imageio"
	"github.com/facegate/facegate/infer/manifest"
	"github.com/facegate/facegate/infer/quality"
	"github.com/facegate/facegate/infer/track"
)

// FrameSource yields frames, the newest first: a slow consumer never sees a
// stale queued frame (capture.Latest).
type FrameSource interface {
	Next(ctx context.Context) (capture.Frame, error)
}

// FaceInfo is what an event says about the face it was decided on.
type FaceInfo struct {
	Box      [4]float64 // x0, y0, x1, y1 in frame pixels
	Quality  quality.Report
	Captured time.Time // frame timestamp: latency is measured from here
	Seq      uint64
	Frame    *imageio.RGB // kept only when events carry images
	Face     *infer.Face
}

// EngineConfig are the engine's parts.
type EngineConfig struct {
	// Pipe detects, and embeds with the first tower (whose chip the
	// quality gate measures); Towers[0].Emb must be Pipe.Emb.
	Pipe    *infer.Pipeline
	Towers  []*Tower
	Fusion  *Fusion
	Gallery *Gallery
	// Decider decides 1:1 claims (N of M frames at Threshold, the first
	// tower's per-comparison threshold); Visits decides 1:N per visit (nil
	// in 1:1-only mode).
	Decider   *Decider
	Visits    *VisitDecider
	Threshold manifest.Threshold
	Quality   quality.Thresholds
	Log       *slog.Logger
	// Emit receives every decision with the face it was decided on. It is
	// called from the decide stage and must not block for long.
	Emit func(Decision, *FaceInfo)
	// Progress is bumped per frame and per inference (watchdog health).
	Progress interface {
		Frame()
		Inference()
	}
	// Observe receives every analysed frame (stats: attempts, failures to
	// acquire, scores, latency).
	Observe func(FrameResult)
	// KeepFrames keeps the frame on FaceInfo (for event images).
	KeepFrames bool
	// Track lets frames reuse the last detection while the faces hold
	// still; the zero value detects on every frame.
	Track track.Config
	// Stages receives each stage's time per frame and the frames the
	// engine's queues drop (daemon/metrics); nil ignores them.
	Stages StageObserver
	// PAD scores the visit's face for passive presentation-attack
	// detection (infer.PAD) on the frames Visits.WantsPAD asks for; nil
	// scores nothing.
	PAD PADScorer
}

// PADScorer scores one face of a frame: p_real (infer.PAD). It is called
// from the decide stage.
type PADScorer interface {
	Score(img *imageio.RGB, box detect.Box) (infer.PADResult, error)
}

// StageObserver records per-stage times (metrics.Stages) and queue drops
// (metrics.QueueAnalyse, metrics.QueueDecide). It is called from the
// stages' goroutines and must not block.
type StageObserver interface {
	ObserveStage(stage string, d time.Duration)
	FramesDropped(queue string, n uint64)
}

func (e *Engine) stageDone(stage string, since time.Time) {
	if e.Stages != nil {
		e.Stages.ObserveStage(stage, time.Since(since))
	}
}

func (e *Engine) dropped(queue string, replaced bool) {
	if replaced && e.Stages != nil {
		e.Stages.FramesDropped(queue, 1)
	}
}

// Engine runs the vision half of the gate: frames → detect → quality gate →
// embed → match → decide, each stage in its own goroutine with a bounded
// queue of one where the latest item wins, so the gate always works on the
// newest frame. It emits decisions through Emit.
type Engine struct {
	EngineConfig
	tracker   *track.Tracker // the analyse stage's alone
	claims    chan Claim
	mu        sync.Mutex
	collector *collector
}

// FrameResult is one analysed frame, for statistics.
type FrameResult struct {
	Seq      uint64
	Captured time.Time
	Analysed time.Time
	Faces    int
	// Acquired: a face passed the quality gate and was embedded.
	Acquired bool
	// QualityFailures lists the failed checks of the primary face.
	QualityFailures []string
	// Score is the best match score when Acquired and the gallery is not
	// empty (NaN otherwise): the fused logit of the best candidate (1:N)
	// or the first tower's score against the claimed subject (1:1).
	Score    float64
	Accepted bool
	// Tracked: the frame reused the last detection (Faces is that
	// detection's count) instead of running the detector.
	Tracked bool
}

type analysed struct {
	frame   capture.Frame
	img     *imageio.RGB
	face    *infer.Face // primary face, embedded; nil when none usable
	primary *infer.Face // primary face, usable or not; nil when none
	embs    TowerEmbeddings
	quality quality.Report
	faces   int
	tracked bool
	at      time.Time
}

// NewEngine checks the pieces and returns an engine ready to Run.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	e := &Engine{EngineConfig: cfg}
	if e.Pipe == nil || e.Pipe.Det == nil || e.Pipe.Emb == nil || e.Gallery == nil || e.Decider == nil || e.Emit == nil {
		return nil, errors.New("engine: pipeline, gallery, decider and emit are required")
	}
	if len(e.Towers) == 0 || e.Towers[0].Emb != e.Pipe.Emb || e.Gallery.Towers() != len(e.Towers) {
		return nil, errors.New("engine: the towers must start with the pipeline's embedder and match the gallery's")
	}
	if e.Visits != nil && e.Fusion == nil {
		return nil, errors.New("engine: 1:N visits need the fusion")
	}
	if err := e.Quality.Validate(); err != nil {
		return nil, err
	}
	var err error
	if e.tracker, err = track.New(e.Track); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if e.Log == nil {
		e.Log = slog.Default()
	}
	e.claims = make(chan Claim, 4)
	return e, nil
}

// Claim asks the decide stage to verify the next good face against a
// subject (1:1).
func (e *Engine) Claim(ctx context.Context, c Claim) error {
	select {
	case e.claims <- c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run runs the stages until ctx ends or the source fails for good.
func (e *Engine) Run(ctx context.Context, src FrameSource) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	frames := newSlot[capture.Frame]()
	results := newSlot[analysed]()
	errc := make(chan error, 3)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); errc <- e.grab(ctx, src, frames) }()
	go func() { defer wg.Done(); errc <- e.analyse(ctx, frames, results) }()
	go func() { defer wg.Done(); errc <- e.decide(ctx, results) }()
	err := <-errc
	cancel()
	wg.Wait()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

func (e *Engine) grab(ctx context.Context, src FrameSource, out *slot[capture.Frame]) error {
	for {
		f, err := src.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("camera: %w", err)
		}
		if e.Progress != nil {
			e.Progress.Frame()
		}
		e.dropped(metrics.QueueAnalyse, out.put(f))
	}
}

func (e *Engine) analyse(ctx context.Context, in *slot[capture.Frame], out *slot[analysed]) error {
	for {
		f, err := in.take(ctx)
		if err != nil {
			return err
		}
		a, err := e.analyseFrame(f)
		if err != nil {
			e.Log.Warn("frame skipped", "seq", f.Seq, "err", err)
			continue
		}
		if e.Progress != nil {
			e.Progress.Inference()
		}
		e.dropped(metrics.QueueDecide, out.put(a))
	}
}

func toImage(f capture.Frame) (*imageio.RGB, error) {
	rgb, err := f.RGB()
	if err != nil {
		return nil, err
	}
	return &imageio.RGB{W: rgb.W, H: rgb.H, Pix: rgb.Packed()}, nil
}

// detect finds the frame's faces: the tracker's copy of the last detection
// when the faces have held still (tracked), else the detector's, which the
// tracker then remembers. A camera enrollment in progress always detects:
// its "exactly one face" rule needs a real count.
func (e *Engine) detect(img *imageio.RGB, at time.Time) (faces []infer.Face, tracked bool, err error) {
	if dets, d := e.tracker.Check(img, at); d.Reuse && !e.collecting() {
		faces = make([]infer.Face, len(dets))
		names := e.Pipe.Det.KeypointNames()
		for i := range dets {
			faces[i] = infer.Face{Detection: dets[i], Names: names}
		}
		return faces, true, nil
	}
	start := time.Now()
	if faces, err = e.Pipe.Detect(img); err != nil {
		e.tracker.Reset()
		return nil, false, err
	}
	e.stageDone(metrics.StageDetect, start)
	if e.Track.Enabled() {
		dets := make([]detect.Detection, len(faces))
		for i := range faces {
			dets[i] = faces[i].Detection
		}
		e.tracker.Update(img, dets, at)
	}
	return faces, false, nil
}

func (e *Engine) collecting() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.collector != nil
}

func (e *Engine) analyseFrame(f capture.Frame) (analysed, error) {
	if !f.Time.IsZero() {
		e.stageDone(metrics.StageCapture, f.Time)
	}
	img, err := toImage(f)
	if err != nil {
		return analysed{}, fmt.Errorf("decode frame: %w", err)
	}
	a := analysed{frame: f, img: img}
	faces, tracked, err := e.detect(img, f.Time)
	if err != nil {
		return analysed{}, err
	}
	a.faces, a.tracked = len(faces), tracked
	// The door's subject is the largest face.
	if primary := infer.Largest(faces); primary != nil {
		// Assessed and, when it passes, embedded from one aligned chip.
		start := time.Now()
		q, err := e.Pipe.AssessEmbed(img, primary, e.Quality)
		if err != nil {
			return analysed{}, err
		}
		e.stageDone(metrics.StageEmbed, start)
		a.quality = q
		a.primary = primary
		if q.OK {
			start = time.Now()
			if a.embs, err = embedTowers(e.Towers, e.Pipe.Det, img, primary); err != nil {
				return analysed{}, err
			}
			if len(e.Towers) > 1 {
				e.stageDone(metrics.StageEmbed, start)
			}
			a.face = primary
			if !tracked { // enrollment counts faces on detected frames only
				e.offer(a.embs, len(faces))
			}
		}
	}
	a.at = time.Now()
	return a, nil
}

func (e *Engine) decide(ctx context.Context, in *slot[analysed]) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		var a analysed
		select {
		case <-ctx.Done():
			return ctx.Err()
		case c := <-e.claims:
			if e.Visits != nil {
				e.Visits.End(EndClaimed) // the claim takes the door over
			}
			for _, d := range e.Decider.Claim(c, time.Now()) {
				e.Emit(d, nil)
			}
			continue
		case now := <-tick.C:
			for _, d := range e.Decider.Tick(now) {
				e.Emit(d, nil)
			}
			if e.Visits != nil {
				for _, d := range e.Visits.Tick(now) {
					e.emitVisit(d)
				}
			}
			continue
		case <-in.ready:
			var ok bool
			if a, ok = in.tryTake(); !ok {
				continue
			}
		}
		if _, claim := e.Decider.PendingClaim(); !claim && e.Visits != nil {
			e.decideVisit(a)
			continue
		}
		start := time.Now()
		obs := e.match(a)
		e.stageDone(metrics.StageMatch, start)
		e.claimFrame(a, &obs) // pad.go: the claim's PAD
		if e.Observe != nil {
			r := FrameResult{Seq: a.frame.Seq, Captured: a.frame.Time, Analysed: a.at, Faces: a.faces,
				Acquired: a.face != nil, Score: math.NaN(), Accepted: obs.Accepted, Tracked: a.tracked}
			if a.faces > 0 && !a.quality.OK {
				r.QualityFailures = a.quality.Failures
			}
			if obs.Subject != "" {
				r.Score = obs.Score
			}
			e.Observe(r)
		}
		start = time.Now()
		for _, d := range e.Decider.Observe(obs) {
			var fi *FaceInfo
			if ref, ok := d.Best.Ref.(*FaceInfo); ok {
				fi = ref
			}
			e.Emit(d, fi)
		}
		e.stageDone(metrics.StageDecide, start)
	}
}

func (e *Engine) emitVisit(d Decision) {
	var fi *FaceInfo
	if ref, ok := d.Best.Ref.(*FaceInfo); ok {
		fi = ref
	}
	e.Emit(d, fi)
}

// decideVisit is the 1:N path: the frame's face scored against everyone
// with every tower, fused, and added to its visit.
func (e *Engine) decideVisit(a analysed) {
	start := time.Now()
	vf, best := e.visitFrame(a)
	e.stageDone(metrics.StageMatch, start)
	if e.PAD != nil && vf.Good && e.Visits.WantsPAD(vf.Box, vf.Time) {
		start = time.Now()
		r, err := e.PAD.Score(a.img, a.face.Box)
		if err != nil {
			e.Log.Warn("pad not scored", "seq", a.frame.Seq, "err", err)
		} else {
			vf.PAD = r.PReal
		}
		e.stageDone(metrics.StagePAD, start)
	}
	if e.Observe != nil {
		r := FrameResult{Seq: a.frame.Seq, Captured: a.frame.Time, Analysed: a.at, Faces: a.faces,
			Acquired: a.face != nil, Score: math.NaN(), Tracked: a.tracked}
		if a.faces > 0 && !a.quality.OK {
			r.QualityFailures = a.quality.Failures
		}
		if best != nil {
			r.Score = best.Logit
			r.Accepted = best.Logit >= e.Visits.cfg.Rule().Threshold
		}
		e.Observe(r)
	}
	start = time.Now()
	for _, d := range e.Visits.Frame(vf) {
		e.emitVisit(d)
	}
	e.stageDone(metrics.StageDecide, start)
}

// candidatesPerTower is how many of each tower's best people are fused.
const candidatesPerTower = 5

// visitFrame scores the frame's face against the gallery and returns it as
// the visit decision sees it, with its best candidate (nil when none).
func (e *Engine) visitFrame(a analysed) (VisitFrame, *ScoredCandidate) {
	vf := VisitFrame{Time: a.frame.Time, PAD: math.NaN()}
	if vf.Time.IsZero() {
		vf.Time = a.at
	}
	if a.primary == nil {
		return vf, nil
	}
	vf.Face = true
	vf.Box, vf.Keypoints, vf.HasKeypoints = faceGeometry(a.primary)
	if a.face == nil {
		if !a.quality.OK {
			vf.Rejected = a.quality.Failures // the visit's failure_to_acquire says why
		}
		return vf, nil
	}
	info := &FaceInfo{Box: vf.Box, Quality: a.quality, Captured: a.frame.Time, Seq: a.frame.Seq, Face: a.face}
	if e.KeepFrames {
		info.Frame = a.img
	}
	vf.Good, vf.Ref = true, info
	// The detector's confidence weighs the frame's evidence.
	vf.Quality = math.Min(1, math.Max(0.05, a.face.Score))
	cands := e.Gallery.Candidates(a.embs, candidatesPerTower, func(t int, s enroll.Score) float64 { return e.Towers[t].Raw(s) })
	var best *ScoredCandidate
	for _, c := range cands {
		l, ok := e.Fusion.Logit(c.Raw)
		if !ok {
			continue
		}
		vf.Candidates = append(vf.Candidates, ScoredCandidate{ID: c.ID, Logit: l, Raw: c.Raw})
	}
	for i := range vf.Candidates {
		if best == nil || vf.Candidates[i].Logit > best.Logit {
			best = &vf.Candidates[i]
		}
	}
	return vf, best
}

// match scores the analysed frame's face against the claim's subject (1:1)
// on the first tower (1:N goes through visitFrame).
func (e *Engine) match(a analysed) Observation {
	obs := Observation{Time: a.frame.Time, Face: a.face != nil}
	if obs.Time.IsZero() {
		obs.Time = a.at
	}
	if a.face == nil {
		return obs
	}
	info := &FaceInfo{
		Box:     [4]float64{a.face.Box.X0, a.face.Box.Y0, a.face.Box.X1, a.face.Box.Y1},
		Quality: a.quality, Captured: a.frame.Time, Seq: a.frame.Seq, Face: a.face,
	}
	if e.KeepFrames {
		info.Frame = a.img
	}
	obs.Ref = info
	if c, ok := e.Decider.PendingClaim(); ok {
		obs.Subject = c.Subject
		m, err := e.Gallery.Verify(c.Subject, a.face.Embedding)
		if err != nil {
			// Unknown subject: the claim cannot verify.
			obs.Accepted = false
			obs.Score = math.NaN()
			return obs
		}
		obs.Score = scoreValue(m.Score, e.Threshold)
		obs.Accepted = enroll.Accepts(m.Score, e.Threshold)
		return obs
	}
	obs.Score = math.NaN() // no claim: 1:1-only mode decides nothing
	return obs
}

// scoreValue is the score in the threshold's units.
func scoreValue(s enroll.Score, t manifest.Threshold) float64 {
	switch t.Score {
	case string(manifest.MetricCosine):
		return s.Similarity
	case "probability":
		return s.Probability
	default:
		return s.Distance
	}
}

// collector gathers embeddings of good single-face frames for enrollment
// from the camera.
type collector struct {
	want int
	got  []TowerEmbeddings
	done chan struct{}
}

func (e *Engine) offer(emb TowerEmbeddings, faces int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.collector
	if c == nil || faces != 1 || len(c.got) >= c.want {
		return
	}
	cp := make(TowerEmbeddings, len(emb))
	for i, v := range emb {
		cp[i] = append([]float32(nil), v...)
	}
	c.got = append(c.got, cp)
	if len(c.got) == c.want {
		close(c.done)
	}
}

// ErrBusy is returned when a camera enrollment is already collecting.
var ErrBusy = errors.New("a camera enrollment is already in progress")

// CollectFaces returns the embeddings (every tower's) of the next k frames
// that show exactly one face passing the quality gate, or an error when ctx
// ends first.
func (e *Engine) CollectFaces(ctx context.Context, k int) ([]TowerEmbeddings, error) {
	c := &collector{want: k, done: make(chan struct{})}
	e.mu.Lock()
	if e.collector != nil {
		e.mu.Unlock()
		return nil, ErrBusy
	}
	e.collector = c
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.collector = nil
		e.mu.Unlock()
	}()
	select {
	case <-c.done:
		return c.got, nil
	case <-ctx.Done():
		e.mu.Lock()
		n := len(c.got)
		e.mu.Unlock()
		return nil, fmt.Errorf("collected %d of %d good frames: %w", n, k, ctx.Err())
	}
}

// slot is a queue of one where the newest item replaces an unread one.
type slot[T any] struct {
	mu      sync.Mutex
	v       T
	has     bool
	ready   chan struct{}
	dropped uint64
}

func newSlot[T any]() *slot[T] { return &slot[T]{ready: make(chan struct{}, 1)} }

// put stores v and reports whether it replaced an unread item.
func (s *slot[T]) put(v T) (replaced bool) {
	s.mu.Lock()
	if s.has {
		s.dropped++
		replaced = true
	}
	s.v, s.has = v, true
	s.mu.Unlock()
	select {
	case s.ready <- struct{}{}:
	default:
	}
	return replaced
}

func (s *slot[T]) tryTake() (T, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var zero T
	if !s.has {
		return zero, false
	}
	v := s.v
	s.v, s.has = zero, false
	return v, true
}

func (s *slot[T]) take(ctx context.Context) (T, error) {
	for {
		if v, ok := s.tryTake(); ok {
			return v, nil
		}
		select {
		case <-s.ready:
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
	}
}

// faceGeometry is what the tracker and the challenge's yaw track need of a
// detected face: its box and, when the detector's keypoints name the
// points quality knows, those keypoints.
func faceGeometry(p *infer.Face) (box [4]float64, kp quality.Keypoints, hasKP bool) {
	box = [4]float64{p.Box.X0, p.Box.Y0, p.Box.X1, p.Box.Y1}
	pts := make([][2]float64, len(p.Keypoints))
	for i, k := range p.Keypoints {
		pts[i] = [2]float64{k.X, k.Y}
	}
	kp, err := quality.KeypointsFrom(pts, p.Names)
	return box, kp, err == nil
}
