package metrics

import (
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every facegate metric.
const Namespace = "facegate"

// Stage names: the values of facegate_stage_duration_seconds's stage label.
const (
	// StageCapture is a frame's age when the analyse stage takes it: the
	// camera, the decode and the queue in between.
	StageCapture = "capture"
	// StageDetect is the face detector's run (frames that reuse a tracked
	// detection are not observed).
	StageDetect = "detect"
	// StageEmbed is the quality check and embedding of the primary face.
	StageEmbed = "embed"
	// StageMatch is the gallery search (1:N) or comparison (1:1).
	StageMatch = "match"
	// StageDecide is the decider's vote and the events it emits (queued
	// durably in the outbox).
	StageDecide = "decide"
	// StagePAD is passive presentation-attack scoring of the visit's face
	// (MiniFASNet; only while the visit is undecided).
	StagePAD = "pad"
)

// Stages lists the stage label values.
var Stages = []string{StageCapture, StageDetect, StageEmbed, StageMatch, StageDecide, StagePAD}

// Outcomes lists the decision outcomes, pre-declared at 0 so dashboards
// and alerts see every series before the first such decision. ambiguous,
// presentation_attack and refused are declared ahead of the decisions that
// will produce them.
var Outcomes = []string{"granted", "denied", "unknown", "ambiguous", "presentation_attack", "refused"}

// Modes lists the decision modes (the events' mode field).
var Modes = []string{"1:N", "1:1"}

// EnrollOps lists the enrolment operations (the requests' op field).
var EnrollOps = []string{"add", "add_images", "delete", "list", "enroll_from_camera"}

// EnrollCodes lists the enrolment reply codes (docs/mqtt.md); "" is a
// successful reply.
var EnrollCodes = []string{"", "no_face", "several_faces", "low_quality", "too_large", "bad_format",
	"unknown_subject", "subject_exists", "unauthorised", "replay", "bad_request", "busy", "timeout", "internal"}

// Other replaces a label value outside its fixed set, so a bad request can
// never create new series.
const Other = "other"

// Drop queues: the values of facegate_frames_dropped_total's queue label.
const (
	QueueCamera  = "camera"  // replaced in the camera's latest-frame slot
	QueueAnalyse = "analyse" // replaced before the detector took them
	QueueDecide  = "decide"  // analysed, replaced before the decider took them
)

// Options configure New.
type Options struct {
	// Version is facegate's version (facegate_build_info).
	Version string
	// VisitGap ends a visit: a visit is a run of frames with a face, and
	// it is over once no face has been seen for this long (default 2 s).
	VisitGap time.Duration
	// Logger may be nil.
	Logger *slog.Logger
}

// Metrics holds one gate's collectors on a registry of its own. All
// methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry
	log *slog.Logger
	gap time.Duration

	framesAnalysed, framesTracked, framesAcquired, facesDetected prometheus.Counter
	decisions                                                    *prometheus.CounterVec
	decisionLatency                                              prometheus.Histogram
	stages                                                       map[string]prometheus.Observer
	visits                                                       prometheus.Histogram
	visitActive                                                  prometheus.Gauge
	enrollments                                                  *prometheus.CounterVec
	modelInfo                                                    *prometheus.GaugeVec
	modelLoad                                                    prometheus.Gauge

	droppedAnalyse, droppedDecide atomic.Uint64

	visitMu              sync.Mutex
	inVisit              bool
	visitStart, lastFace time.Time

	modelsLoaded, cameraDelivered atomic.Bool

	srcMu sync.RWMutex
	src   Sources
}

// New returns the gate's metrics with every fixed series declared.
func New(o Options) *Metrics {
	if o.VisitGap <= 0 {
		o.VisitGap = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{reg: prometheus.NewRegistry(), log: o.Logger, gap: o.VisitGap, stages: map[string]prometheus.Observer{}}
	f := factory{m.reg}
	f.gaugeVec("build_info", "facegate's version and the Go version that built it (always 1).", "version", "goversion").
		WithLabelValues(o.Version, runtime.Version()).Set(1)
	m.framesAnalysed = f.counter("frames_analysed_total", "Frames the analyse stage finished (detect, quality, embed).")
	m.framesTracked = f.counter("frames_tracked_total", "Analysed frames that reused the last detection instead of running the detector (FACEGATE_TRACK_*).")
	m.framesAcquired = f.counter("frames_acquired_total", "Analysed frames whose primary face passed the quality gate and was embedded.")
	m.facesDetected = f.counter("faces_detected_total", "Faces found in analysed frames (tracked frames count their reused detections).")
	m.decisions = f.counterVec("decisions_total", "Decisions the gate made (each one an event), by outcome and mode (1:N identify, 1:1 claim).", "outcome", "mode")
	for _, o := range Outcomes {
		for _, md := range Modes {
			m.decisions.WithLabelValues(o, md)
		}
	}
	m.decisionLatency = f.histogram("decision_latency_seconds", "From the capture of the frame a decision was made on to the decision's event being queued.",
		[]float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10})
	stage := f.histogramVec("stage_duration_seconds", "Time per frame in each pipeline stage (capture = the frame's age when analysis starts).",
		[]float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}, "stage")
	for _, s := range Stages {
		m.stages[s] = stage.WithLabelValues(s)
	}
	m.visits = f.histogram("visit_duration_seconds", "Length of visits: runs of frames with a face, ended by a gap without one.",
		[]float64{.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600})
	m.visitActive = f.gauge("visit_active", "1 while a visit is in progress (a face seen within the visit gap).")
	m.enrollments = f.counterVec("enrollments_total", "Enrolment requests answered, by op, status (ok, error) and reply code (empty when ok).", "op", "status", "code")
	for _, op := range EnrollOps {
		m.enrollments.WithLabelValues(op, "ok", "")
	}
	m.modelInfo = f.gaugeVec("model_info", "The loaded models (always 1).", "role", "name", "version", "weights")
	m.modelLoad = f.gauge("models_load_duration_seconds", "How long loading the detector and embedder took at start-up.")
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: Namespace, Name: "ready",
		Help: "1 when /readyz answers 200: models loaded and the camera delivering."}, func() float64 {
		if ok, _ := m.Ready(); ok {
			return 1
		}
		return 0
	}))
	m.reg.MustRegister(&sourceCollector{m: m}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is the gate's registry (for /metrics and tests).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

func pick(v string, set []string) string {
	if slices.Contains(set, v) {
		return v
	}
	return Other
}

// FrameAnalysed counts one analysed frame with its faces and feeds the
// visit tracker. at is when the frame was analysed.
func (m *Metrics) FrameAnalysed(at time.Time, faces int, acquired, tracked bool) {
	m.framesAnalysed.Inc()
	if tracked {
		m.framesTracked.Inc()
	}
	if acquired {
		m.framesAcquired.Inc()
	}
	if faces > 0 {
		m.facesDetected.Add(float64(faces))
	}
	m.visitMu.Lock()
	defer m.visitMu.Unlock()
	switch {
	case faces > 0 && !m.inVisit:
		m.inVisit, m.visitStart, m.lastFace = true, at, at
		m.visitActive.Set(1)
	case faces > 0:
		m.lastFace = at
	case m.inVisit && at.Sub(m.lastFace) >= m.gap:
		m.inVisit = false
		m.visits.Observe(m.lastFace.Sub(m.visitStart).Seconds())
		m.visitActive.Set(0)
	}
}

// ObserveStage records the time one frame spent in a stage (Stages).
func (m *Metrics) ObserveStage(stage string, d time.Duration) {
	if o, ok := m.stages[stage]; ok {
		o.Observe(d.Seconds())
	}
}

// FramesDropped counts frames replaced in one of the engine's queues
// (QueueAnalyse, QueueDecide) before a stage took them.
func (m *Metrics) FramesDropped(queue string, n uint64) {
	switch queue {
	case QueueAnalyse:
		m.droppedAnalyse.Add(n)
	case QueueDecide:
		m.droppedDecide.Add(n)
	}
}

// Decision counts a decision by outcome (Outcomes) and mode (Modes);
// latency, from the frame's capture, is observed when positive.
func (m *Metrics) Decision(outcome, mode string, latency time.Duration) {
	m.decisions.WithLabelValues(pick(outcome, Outcomes), pick(mode, Modes)).Inc()
	if latency > 0 {
		m.decisionLatency.Observe(latency.Seconds())
	}
}

// Enrollment counts an answered enrolment request by op, status (ok or
// error) and code.
func (m *Metrics) Enrollment(op, status, code string) {
	if status != "ok" {
		status = "error"
	}
	if op == "" {
		op = "none" // the request could not be read
	} else {
		op = pick(op, EnrollOps)
	}
	m.enrollments.WithLabelValues(op, status, pick(code, EnrollCodes)).Inc()
}

// Model describes one loaded model.
type Model struct {
	Role    string // detector or embedder
	Name    string
	Version string
	Weights string // pretrained, untrained, ...
}

// ModelsLoaded records the loaded models and how long loading took; from
// now on readiness waits only for the camera.
func (m *Metrics) ModelsLoaded(took time.Duration, models ...Model) {
	for _, md := range models {
		m.modelInfo.WithLabelValues(md.Role, md.Name, md.Version, md.Weights).Set(1)
	}
	m.modelLoad.Set(took.Seconds())
	m.modelsLoaded.Store(true)
}

// CameraDelivered records that the camera delivered its first frame.
func (m *Metrics) CameraDelivered() { m.cameraDelivered.Store(true) }

// Ready reports whether the gate is ready to decide, with the reason when
// it is not: the models must be loaded, the camera must have delivered a
// frame and (when its state is known) be connected.
func (m *Metrics) Ready() (bool, string) {
	if !m.modelsLoaded.Load() {
		return false, "models not loaded"
	}
	if !m.cameraDelivered.Load() {
		return false, "camera has not delivered a frame yet"
	}
	m.srcMu.RLock()
	cam := m.src.Camera
	m.srcMu.RUnlock()
	if cam != nil && !cam().Connected {
		return false, "camera disconnected"
	}
	return true, "ready"
}

// factory makes collectors registered on one registry.
type factory struct{ reg *prometheus.Registry }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help})
	f.reg.MustRegister(g)
	return g
}

func (f factory) gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	f.reg.MustRegister(g)
	return g
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets})
	f.reg.MustRegister(h)
	return h
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}
