package daemon

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/facegate/facegate/daemon/auth"
	"github.com/facegate/facegate/daemon/mqtt"
	"github.com/facegate/facegate/infer"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// promSample is one scraped series: its labels and value (a histogram's
// sample count).
type promSample struct {
	labels map[string]string
	value  float64
}

func scrapeMetrics(t *testing.T, addr string) map[string][]promSample {
	t.Helper()
	code, body := httpGet(t, "http://"+addr+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	out := map[string][]promSample{}
	for name, f := range fams {
		for _, m := range f.Metric {
			s := promSample{labels: map[string]string{}}
			for _, l := range m.Label {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				s.value = m.Counter.GetValue()
			case dto.MetricType_GAUGE:
				s.value = m.Gauge.GetValue()
			case dto.MetricType_HISTOGRAM:
				s.value = float64(m.Histogram.GetSampleCount())
			default:
				s.value = m.Untyped.GetValue()
			}
			out[name] = append(out[name], s)
		}
	}
	return out
}

// sampleValue sums the series of name whose labels include the given
// name=value pairs; ok is false when the family is absent.
func sampleValue(fams map[string][]promSample, name string, labels ...string) (v float64, ok bool) {
	ss, ok := fams[name]
	for _, s := range ss {
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if s.labels[labels[i]] != labels[i+1] {
				match = false
			}
		}
		if match {
			v += s.value
		}
	}
	return v, ok
}

// TestE2EMetrics runs the real daemon (models, a camera folder looping
// through a person and an empty scene, Mosquitto) with metrics on a free
// loopback port: /readyz is 503 until the camera has delivered a frame,
// then 200; after an enrolment and some frames /metrics has every family,
// with non-zero values where there was traffic.
func TestE2EMetrics(t *testing.T) {
	broker := testBroker(t)
	data := infer.TestDataDir(t)
	models := filepath.Dir(infer.TestModelDir(t, "dlib-resnet-v1"))
	infer.TestModelDir(t, "blazeface-short")
	dir := t.TempDir()
	clip := filepath.Join(dir, "clip")
	os.Mkdir(clip, 0o755)
	copyFile := func(src, dst string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// 0.5 s of Tony Blair, then 3 s of an empty scene (visits end after
	// 2 s without a face), looped.
	for i, p := range []string{"002.jpg", "003.jpg", "005.jpg", "006.jpg"} {
		copyFile(filepath.Join(data, "faces", "lfw__Tony_Blair", p), filepath.Join(clip, fmt.Sprintf("%03d.jpg", i)))
	}
	for i := range 24 {
		copyFile(filepath.Join("..", "testdata", "coffee.jpg"), filepath.Join(clip, fmt.Sprintf("%03d.jpg", 100+i)))
	}
	secret := bytes.Repeat([]byte{7}, 32)
	keys := filepath.Join(dir, "keys")
	os.WriteFile(keys, []byte("k1:"+base64.StdEncoding.EncodeToString(secret)+"\n"), 0o600)
	gkey := filepath.Join(dir, "gallery-key")
	os.WriteFile(gkey, []byte("g1:"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))+"\n"), 0o600)
	device := "metrics-" + randomHex(4)
	for k, v := range map[string]string{
		"FACEGATE_DEVICE_ID": device, "FACEGATE_STATE_DIR": filepath.Join(dir, "state"), "FACEGATE_MODELS_DIR": models,
		"FACEGATE_CAMERA": clip, "FACEGATE_CAMERA_FPS": "8", "FACEGATE_CAMERA_LOOP": "true",
		"FACEGATE_CAMERA_WIDTH": "640", "FACEGATE_CAMERA_HEIGHT": "480",
		"FACEGATE_MQTT_BROKERS": broker, "FACEGATE_ENROLL_KEYS": keys, "FACEGATE_GALLERY_KEY": gkey,
		"FACEGATE_QUALITY_MIN_IOD": "20", "FACEGATE_COOLDOWN": "1h", "FACEGATE_UNKNOWN_INTERVAL": "1h",
		"FACEGATE_MQTT_HA_DISCOVERY": "false", "FACEGATE_MQTT_STATS_INTERVAL": "2s",
		"FACEGATE_METRICS_ADDR": "127.0.0.1:0",
	} {
		t.Setenv(k, v)
	}
	cfg, err := LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := NewService(cfg, "test-metrics", slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	addr := svc.MetricsAddr()
	if addr == "" {
		svc.Close()
		t.Fatal("metrics not served")
	}

	// Models are loaded; the camera has delivered nothing yet.
	if code, body := httpGet(t, "http://"+addr+"/readyz"); code != 503 || !strings.Contains(body, "camera") {
		svc.Close()
		t.Fatalf("/readyz before the first frame: %d %q", code, body)
	}
	if code, _ := httpGet(t, "http://"+addr+"/healthz"); code != 200 {
		svc.Close()
		t.Fatalf("/healthz %d", code)
	}
	before := scrapeMetrics(t, addr)
	if v, _ := sampleValue(before, "facegate_model_info", "role", "embedder", "name", "dlib-resnet-v1"); v != 1 {
		t.Errorf("model_info before run: %g", v)
	}
	if v, _ := sampleValue(before, "facegate_ready"); v != 0 {
		t.Errorf("facegate_ready %g before the first frame", v)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon stopped with %v", err)
			}
		case <-time.After(ShutdownTimeout + 5*time.Second):
			t.Error("daemon did not stop in time")
		}
		svc.Close()
		if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
			t.Error("metrics still served after Close")
		}
	}()
	waitFor := func(what string, d time.Duration, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if ok() {
				return
			}
		}
		t.Fatalf("timed out waiting for %s", what)
	}
	waitFor("/readyz 200", 30*time.Second, func() bool {
		code, _ := httpGet(t, "http://"+addr+"/readyz")
		return code == 200
	})

	// Enrol Tony over MQTT (signed), and ask to delete someone unknown.
	topics := mqtt.NewTopics(cfg.MQTT.Prefix, device)
	cl := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID("metrics-client-" + randomHex(4)))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("test client: %v", tok.Error())
	}
	defer cl.Disconnect(100)
	replies := make(chan mqtt.EnrollReply, 4)
	if tok := cl.Subscribe(topics.Base+"/enroll/reply/+", 1, func(_ paho.Client, m paho.Message) {
		var r mqtt.EnrollReply
		if json.Unmarshal(m.Payload(), &r) == nil {
			replies <- r
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	key, _ := auth.NewKey("k1", secret)
	request := func(r *mqtt.EnrollRequest) mqtt.EnrollReply {
		t.Helper()
		r.RequestID = randomHex(8)
		a, err := mqtt.Sign(key, r, device, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		r.Auth = a
		b, _ := json.Marshal(r)
		// The daemon subscribes once connected: publish until answered.
		// A resend of a request the daemon already accepted is answered
		// "replay" at once, possibly before the first copy's reply (a
		// loaded machine takes more than 3 s to enrol): that is our own
		// duplicate, not the answer, so keep waiting for the other reply.
		sent := false
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
			if !sent {
				cl.Publish(topics.EnrollRequest, 1, false, b).WaitTimeout(5 * time.Second)
			}
			select {
			case rep := <-replies:
				if rep.RequestID != r.RequestID {
					continue
				}
				if rep.Code == mqtt.CodeReplay {
					sent = true // the daemon has the request: stop resending
					continue
				}
				return rep
			case <-time.After(3 * time.Second):
			}
		}
		t.Fatalf("no reply to %s", r.Op)
		return mqtt.EnrollReply{}
	}
	waitFor("MQTT connected", 30*time.Second, func() bool {
		v, _ := sampleValue(scrapeMetrics(t, addr), "facegate_mqtt_connected")
		return v == 1
	})
	if rep := request(&mqtt.EnrollRequest{Op: mqtt.OpAdd, SubjectID: "tony", Name: "Tony Blair", Images: []string{photo(t, "faces/lfw__Tony_Blair/010.jpg")}}); rep.Status != mqtt.ReplyOK {
		t.Fatalf("enroll: %+v", rep)
	}
	if rep := request(&mqtt.EnrollRequest{Op: mqtt.OpDelete, SubjectID: "nobody"}); rep.Code != mqtt.CodeUnknownSubject {
		t.Fatalf("delete nobody: %+v", rep)
	}
	// A grant, and at least one whole visit (face, then 3 s without).
	var fams map[string][]promSample
	waitFor("a grant and a finished visit", 60*time.Second, func() bool {
		fams = scrapeMetrics(t, addr)
		g, _ := sampleValue(fams, "facegate_decisions_total", "outcome", "granted", "mode", "1:N")
		v, _ := sampleValue(fams, "facegate_visit_duration_seconds")
		return g >= 1 && v >= 1
	})

	nonZero := []struct {
		name   string
		labels []string
	}{
		{"facegate_frames_analysed_total", nil},
		{"facegate_faces_detected_total", nil},
		{"facegate_frames_acquired_total", nil},
		{"facegate_camera_frames_in_total", nil},
		{"facegate_camera_frames_out_total", nil},
		{"facegate_camera_decodes_total", nil},
		{"facegate_camera_connected", nil},
		{"facegate_stage_duration_seconds", []string{"stage", "capture"}},
		{"facegate_stage_duration_seconds", []string{"stage", "detect"}},
		{"facegate_stage_duration_seconds", []string{"stage", "embed"}},
		{"facegate_stage_duration_seconds", []string{"stage", "match"}},
		{"facegate_stage_duration_seconds", []string{"stage", "decide"}},
		{"facegate_decisions_total", []string{"outcome", "granted"}},
		{"facegate_decision_latency_seconds", nil},
		{"facegate_visit_duration_seconds", nil},
		{"facegate_gallery_subjects", nil},
		{"facegate_gallery_templates", nil},
		{"facegate_mqtt_connected", nil},
		{"facegate_enrollments_total", []string{"op", "add", "status", "ok"}},
		{"facegate_enrollments_total", []string{"op", "delete", "status", "error", "code", "unknown_subject"}},
		{"facegate_model_info", []string{"role", "detector", "name", "blazeface-short"}},
		{"facegate_models_load_duration_seconds", nil},
		{"facegate_ready", nil},
		{"facegate_build_info", []string{"version", "test-metrics"}},
		{"process_resident_memory_bytes", nil},
	}
	for _, c := range nonZero {
		if v, ok := sampleValue(fams, c.name, c.labels...); !ok || v <= 0 {
			t.Errorf("%s%v = %g (present %v), want > 0", c.name, c.labels, v, ok)
		}
	}
	for _, name := range []string{"facegate_frames_dropped_total", "facegate_outbox_pending_events", "facegate_outbox_dropped_events_total",
		"facegate_mqtt_requests_rejected_total", "facegate_feedback_false_grants_total", "facegate_camera_frames_corrupt_total", "facegate_visit_active"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("%s not exposed", name)
		}
	}
	for _, o := range []string{"ambiguous", "presentation_attack", "refused", "unknown", "denied"} {
		if _, ok := sampleValue(fams, "facegate_decisions_total", "outcome", o); !ok || len(fams["facegate_decisions_total"]) < 12 {
			t.Errorf("decision outcome %s not declared", o)
		}
	}
	if v, _ := sampleValue(fams, "facegate_gallery_subjects"); v != 1 {
		t.Errorf("gallery_subjects %g, want 1", v)
	}
	if v, _ := sampleValue(fams, "facegate_decisions_total", "outcome", "granted"); v != 1 {
		t.Errorf("%g grants, want 1 (cooldown 1h)", v)
	}
	// Never a person's id in a label.
	_, body := httpGet(t, "http://"+addr+"/metrics")
	if strings.Contains(body, "tony") || strings.Contains(body, "Blair") {
		t.Error("a person's id or name is in /metrics")
	}
}
