package metrics

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape GETs /metrics from the handler and parses the text format.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("content type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value returns the value of the family's series with the given labels
// (name=value pairs); counters, gauges and histograms (sample count).
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("%s not exposed", name)
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			return m.Untyped.GetValue()
		}
	}
	t.Fatalf("%s has no series %v", name, labels)
	return 0
}

func fakeSources() Sources {
	return Sources{
		Gallery: func() (int, int) { return 3, 7 },
		Camera: func() Camera {
			return Camera{FramesIn: 100, FramesOut: 90, Dropped: 10, Corrupt: 2, Decodes: 100, DecodeTotal: 500 * time.Millisecond, Connected: true}
		},
		MQTT: func() MQTT {
			return MQTT{Connected: true, OutboxPending: 4, OutboxDropped: 1, RequestsDropped: 2, RequestsRejected: 5}
		},
		Feedback: func() Feedback { return Feedback{Correct: 6, Wrong: 2, GrantsReviewed: 5, FalseGrants: 1} },
	}
}

// TestScrapeNamesAndValues drives the API as the daemon does and checks
// the scraped names and values.
func TestScrapeNamesAndValues(t *testing.T) {
	m := New(Options{Version: "v-test"})
	m.SetSources(fakeSources())
	t0 := time.Unix(1000, 0)
	m.FrameAnalysed(t0, 2, true, false)
	m.FrameAnalysed(t0.Add(100*time.Millisecond), 1, false, true)
	m.FrameAnalysed(t0.Add(200*time.Millisecond), 0, false, false)
	m.ObserveStage(StageDetect, 12*time.Millisecond)
	m.ObserveStage(StageDetect, 14*time.Millisecond)
	m.ObserveStage(StageEmbed, 30*time.Millisecond)
	m.ObserveStage("nonsense", time.Second) // ignored
	m.FramesDropped(QueueAnalyse, 3)
	m.FramesDropped(QueueDecide, 1)
	m.Decision("granted", "1:N", 180*time.Millisecond)
	m.Decision("unknown", "1:N", 0)
	m.Decision("denied", "1:1", 0)
	m.Enrollment("add", "ok", "")
	m.Enrollment("list", "error", "unauthorised")
	m.ModelsLoaded(1500*time.Millisecond, Model{"detector", "blazeface-short", "1", "pretrained"}, Model{"embedder", "dlib-resnet-v1", "1", "pretrained"})

	fams := scrape(t, Handler(m))
	want := map[string]float64{
		"facegate_frames_analysed_total":        3,
		"facegate_frames_tracked_total":         1,
		"facegate_frames_acquired_total":        1,
		"facegate_faces_detected_total":         3,
		"facegate_camera_frames_in_total":       100,
		"facegate_camera_frames_out_total":      90,
		"facegate_camera_frames_corrupt_total":  2,
		"facegate_camera_connected":             1,
		"facegate_camera_decode_seconds_total":  0.5,
		"facegate_gallery_subjects":             3,
		"facegate_gallery_templates":            7,
		"facegate_mqtt_connected":               1,
		"facegate_outbox_pending_events":        4,
		"facegate_outbox_dropped_events_total":  1,
		"facegate_mqtt_requests_dropped_total":  2,
		"facegate_feedback_false_grants_total":  1,
		"facegate_decision_latency_seconds":     1,
		"facegate_models_load_duration_seconds": 1.5,
		"facegate_visit_active":                 1,
	}
	for name, v := range want {
		if got := value(t, fams, name); got != v {
			t.Errorf("%s = %g, want %g", name, got, v)
		}
	}
	labelled := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"facegate_frames_dropped_total", []string{"queue", "camera"}, 10},
		{"facegate_frames_dropped_total", []string{"queue", "analyse"}, 3},
		{"facegate_frames_dropped_total", []string{"queue", "decide"}, 1},
		{"facegate_stage_duration_seconds", []string{"stage", "detect"}, 2},
		{"facegate_stage_duration_seconds", []string{"stage", "embed"}, 1},
		{"facegate_stage_duration_seconds", []string{"stage", "match"}, 0},
		{"facegate_decisions_total", []string{"outcome", "granted", "mode", "1:N"}, 1},
		{"facegate_decisions_total", []string{"outcome", "denied", "mode", "1:1"}, 1},
		// Declared before anything produces them.
		{"facegate_decisions_total", []string{"outcome", "ambiguous", "mode", "1:N"}, 0},
		{"facegate_decisions_total", []string{"outcome", "presentation_attack", "mode", "1:N"}, 0},
		{"facegate_decisions_total", []string{"outcome", "refused", "mode", "1:1"}, 0},
		{"facegate_enrollments_total", []string{"op", "add", "status", "ok"}, 1},
		{"facegate_enrollments_total", []string{"op", "delete", "status", "ok"}, 0},
		{"facegate_enrollments_total", []string{"op", "list", "status", "error", "code", "unauthorised"}, 1},
		{"facegate_feedback_total", []string{"verdict", "wrong"}, 2},
		{"facegate_model_info", []string{"role", "embedder", "name", "dlib-resnet-v1"}, 1},
		{"facegate_build_info", []string{"version", "v-test"}, 1},
	}
	for _, c := range labelled {
		if got := value(t, fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %g, want %g", c.name, c.labels, got, c.want)
		}
	}
	if got := fams["facegate_stage_duration_seconds"]; got.GetType() != dto.MetricType_HISTOGRAM {
		t.Errorf("stage durations are %v, want a histogram", got.GetType())
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "facegate_ready"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s not exposed", name)
		}
	}
}

// TestLint: names follow Prometheus's conventions (promlint: _total on
// counters, base units, help text).
func TestLint(t *testing.T) {
	m := New(Options{})
	m.SetSources(fakeSources())
	probs, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		if strings.HasPrefix(p.Metric, "facegate_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

// TestLabelsBounded: values outside the fixed sets become "other", so a
// request cannot create series (nor put a person's id in a label).
func TestLabelsBounded(t *testing.T) {
	m := New(Options{})
	m.Decision("alice", "1:N", 0)
	m.Decision("granted", "sideways", 0)
	m.Enrollment("alice-smith", "error", "bad_request")
	m.Enrollment("add", "weird", "alice")
	m.Enrollment("", "error", "bad_format")
	if got := testutil.ToFloat64(m.decisions.WithLabelValues(Other, "1:N")); got != 1 {
		t.Errorf("unknown outcome counted %g under other", got)
	}
	if got := testutil.ToFloat64(m.decisions.WithLabelValues("granted", Other)); got != 1 {
		t.Errorf("unknown mode counted %g under other", got)
	}
	if got := testutil.ToFloat64(m.enrollments.WithLabelValues(Other, "error", "bad_request")); got != 1 {
		t.Errorf("unknown op counted %g under other", got)
	}
	if got := testutil.ToFloat64(m.enrollments.WithLabelValues("add", "error", Other)); got != 1 {
		t.Errorf("unknown code/status counted %g", got)
	}
	if got := testutil.ToFloat64(m.enrollments.WithLabelValues("none", "error", "bad_format")); got != 1 {
		t.Errorf("unreadable request counted %g under op none", got)
	}
	var buf bytes.Buffer
	rec := httptest.NewRecorder()
	Handler(m).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	buf.Write(rec.Body.Bytes())
	if strings.Contains(buf.String(), "alice") {
		t.Error("a request's value became a label")
	}
	want := len(Outcomes)*len(Modes) + 2
	if n := testutil.CollectAndCount(m.decisions); n != want {
		t.Errorf("%d decision series, want %d", n, want)
	}
}

// TestVisits: a visit lasts from the first to the last frame with a face
// and ends after the gap without one.
func TestVisits(t *testing.T) {
	m := New(Options{VisitGap: time.Second})
	t0 := time.Unix(5000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	m.FrameAnalysed(at(0), 0, false, false) // nobody
	for s := 1.0; s <= 4; s += 0.5 {
		m.FrameAnalysed(at(s), 1, true, false)
	}
	m.FrameAnalysed(at(4.5), 0, false, false) // within the gap: still visiting
	if got := testutil.ToFloat64(m.visitActive); got != 1 {
		t.Fatalf("visit_active %g during the gap", got)
	}
	m.FrameAnalysed(at(4.8), 1, true, false) // back: same visit
	m.FrameAnalysed(at(5.9), 0, false, false)
	if testutil.CollectAndCount(m.visits) != 1 {
		t.Fatal("no visit histogram")
	}
	m.FrameAnalysed(at(6.0), 0, false, false) // 1.2 s after the last face: over
	h := histogram(t, m)
	if h.GetSampleCount() != 1 || math.Abs(h.GetSampleSum()-3.8) > 1e-9 {
		t.Fatalf("visits: count %d sum %g, want 1 visit of 3.8 s", h.GetSampleCount(), h.GetSampleSum())
	}
	if got := testutil.ToFloat64(m.visitActive); got != 0 {
		t.Fatalf("visit_active %g after the visit", got)
	}
	m.FrameAnalysed(at(10), 2, true, false)
	m.FrameAnalysed(at(12), 0, false, false)
	if h := histogram(t, m); h.GetSampleCount() != 2 || math.Abs(h.GetSampleSum()-3.8) > 1e-9 {
		t.Fatalf("a one-frame visit: count %d sum %g", h.GetSampleCount(), h.GetSampleSum())
	}
}

func histogram(t *testing.T, m *Metrics) *dto.Histogram {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "facegate_visit_duration_seconds" {
			return f.Metric[0].Histogram
		}
	}
	t.Fatal("facegate_visit_duration_seconds not gathered")
	return nil
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Code, rec.Body.String()
}

// TestReadyz: 503 with the reason until the models are loaded and the
// camera delivered a frame, and again while the camera is disconnected.
func TestReadyz(t *testing.T) {
	m := New(Options{})
	h := Handler(m)
	if code, _ := get(t, h, "/healthz"); code != 200 {
		t.Fatalf("/healthz %d", code)
	}
	steps := []struct {
		do   func()
		code int
		body string
	}{
		{func() {}, 503, "models not loaded"},
		{func() { m.ModelsLoaded(time.Second) }, 503, "camera has not delivered"},
		{func() { m.CameraDelivered() }, 200, "ready"},
		{func() { m.SetSources(Sources{Camera: func() Camera { return Camera{Connected: false} }}) }, 503, "camera disconnected"},
		{func() { m.SetSources(Sources{Camera: func() Camera { return Camera{Connected: true} }}) }, 200, "ready"},
	}
	for i, s := range steps {
		s.do()
		code, body := get(t, h, "/readyz")
		if code != s.code || !strings.Contains(body, s.body) {
			t.Fatalf("step %d: /readyz %d %q, want %d %q", i, code, body, s.code, s.body)
		}
		ready := value(t, scrape(t, h), "facegate_ready")
		if (ready == 1) != (s.code == 200) {
			t.Fatalf("step %d: facegate_ready %g with /readyz %d", i, ready, s.code)
		}
	}
	if code, _ := get(t, h, "/nothing"); code != 404 {
		t.Fatalf("/nothing %d", code)
	}
}

func TestValidateAddr(t *testing.T) {
	for _, c := range []struct {
		addr     string
		ok, loop bool
	}{
		{"127.0.0.1:9464", true, true},
		{"localhost:9464", true, true},
		{"[::1]:9464", true, true},
		{"0.0.0.0:9464", true, false},
		{":9464", true, false},
		{"gate.example.net:9464", true, false},
		{"10.0.0.5:0", true, false},
		{"127.0.0.1", false, false},
		{"127.0.0.1:http", false, true},
		{"127.0.0.1:70000", false, true},
		{"bad host:9464", false, false},
		{"", false, false},
	} {
		err := ValidateAddr(c.addr)
		if (err == nil) != c.ok {
			t.Errorf("ValidateAddr(%q) = %v, want ok %v", c.addr, err, c.ok)
		}
		if IsLoopback(c.addr) != c.loop {
			t.Errorf("IsLoopback(%q) = %v", c.addr, !c.loop)
		}
	}
}

// TestServer serves on a real socket, warns beyond loopback and stops
// with its context.
func TestServer(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	m := New(Options{})
	if _, err := NewServer("127.0.0.1", m, log); err == nil {
		t.Fatal("an address without a port was accepted")
	}
	s, err := NewServer("127.0.0.1:0", m, log)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), "not authenticated") {
		t.Fatal("warned on loopback")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	resp, err := http.Get("http://" + s.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("/healthz %d %q", resp.StatusCode, body)
	}
	resp, err = http.Get("http://" + s.Addr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("/readyz %d before the models loaded", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(ShutdownTimeout + time.Second):
		t.Fatal("server did not stop")
	}
	if _, err := http.Get("http://" + s.Addr() + "/healthz"); err == nil {
		t.Fatal("still serving after Run returned")
	}

	wide, err := NewServer("0.0.0.0:0", m, log)
	if err != nil {
		t.Fatal(err)
	}
	defer wide.Shutdown(context.Background())
	if !strings.Contains(logs.String(), "not authenticated") {
		t.Fatalf("no warning for a non-loopback address; logs: %s", logs.String())
	}
}
