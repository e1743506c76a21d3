//go:build door

package door

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/color"
	stddraw "image/draw"
	"image/jpeg"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/facegate/facegate/daemon/auth"
	"github.com/facegate/facegate/daemon/mqtt"
	"github.com/facegate/facegate/internal/daemontest"
)

// The scenario's knobs (make door-scenario passes -bin and -out).
var (
	binFlag       = flag.String("bin", "../../bin/facegate", "the facegate binary under test")
	outFlag       = flag.String("out", "../../build/door", "folder for report.md, report.json, events.jsonl, the clip and the daemon's log")
	facesFlag     = flag.String("faces", "../../../shared/data/faces", "the face data (../shared/data/faces)")
	modelsFlag    = flag.String("models", "", "exported models (default: FACEGATE_MODELS_DIR, else ../../build/models)")
	fpsFlag       = flag.Float64("fps", 15, "the camera's rate: FACEGATE_CAMERA_FPS of the clip")
	enrolFlag     = flag.Int("enrolled", 50, "people to enrol one-shot (one genuine visit each)")
	strangersFlag = flag.Int("strangers", 50, "never-enrolled people (one visit each)")
	reserveFlag   = flag.Int("reserve", 15, "extra enrolment candidates, used in order when the gate refuses one")
	photosFlag    = flag.Int("photos", 3, "photos shown per visit, at most")
	seedFlag      = flag.Uint64("seed", 17, "draw of people and order of visits")
	padFlag       = flag.String("pad", "off", "FACEGATE_PAD of the run (the clip is made of photographs: passive PAD would rightly refuse them)")
	embeddersFlag = flag.String("embedders", "dlib-resnet-v1,sface-2021dec", "FACEGATE_EMBEDDERS of the run")
)

// need fails under CI=true and skips elsewhere when a prerequisite is
// missing (make door-scenario builds the binary and the models).
func need(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true but %s is missing: %v", what, err)
	}
	t.Skipf("%s is missing: %v", what, err)
}

// gate is what both daemons of the scenario share: keys, state, ports.
type gate struct {
	dir, state, keys, gkey, device, models string
	key                                    auth.Key
	mqttPort, metricsPort                  int
}

func newGate(t *testing.T, dir string) *gate {
	t.Helper()
	g := &gate{dir: dir, state: filepath.Join(dir, "state"), keys: filepath.Join(dir, "enroll-keys"), gkey: filepath.Join(dir, "gallery-key"),
		device: "door-" + daemontest.RandomHex(3), mqttPort: daemontest.FreePort(t), metricsPort: daemontest.FreePort(t)}
	g.key = daemontest.WriteKeys(t, g.keys, g.gkey)
	g.models = daemontest.ModelsDir(*modelsFlag, "../../build/models")
	return g
}

// settings are the FACEGATE_ variables of the scenario (besides the
// camera), as the report lists them.
func (g *gate) settings() []string {
	return []string{"FACEGATE_EMBEDDERS=" + *embeddersFlag, "FACEGATE_PAD=" + *padFlag, "FACEGATE_CAMERA_WIDTH=640", "FACEGATE_CAMERA_HEIGHT=480",
		"FACEGATE_COOLDOWN=0s", "FACEGATE_UNKNOWN_INTERVAL=0s", "FACEGATE_MQTT_STATS_INTERVAL=10s"}
}

func (g *gate) env(camera string, fps float64, loop bool) []string {
	run := daemontest.RunConfig{Device: g.device, State: g.state, Models: g.models, Camera: camera, FPS: fps, Loop: loop,
		MQTTPort: g.mqttPort, EnrollKeys: g.keys, GalleryKey: g.gkey, MetricsAddr: "127.0.0.1:" + strconv.Itoa(g.metricsPort)}
	return append(append(daemontest.EnvWithout("FACEGATE_"), g.settings()...), run.Env()...)
}

// daemon is one running `facegate run` and an MQTT client on its broker.
type daemon struct {
	t *testing.T
	g *gate
	p *daemontest.Process
	c *daemontest.Client

	mu     sync.Mutex
	events [][]byte
	stats  []byte
}

func startDaemon(t *testing.T, g *gate, camera string, fps float64, loop bool) *daemon {
	t.Helper()
	d := &daemon{t: t, g: g, p: &daemontest.Process{Name: "daemon", Bin: *binFlag, Args: []string{"run"}, Env: g.env(camera, fps, loop)}}
	if err := d.p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.stop)
	if _, err := d.p.WaitLog("msg=ready", 120*time.Second, 50*time.Millisecond); err != nil {
		t.Fatalf("daemon not ready: %v\n%s", err, d.p.Logs.String())
	}
	topics := mqtt.NewTopics("facegate", g.device)
	c, err := daemontest.Connect(g.mqttPort, "door-"+daemontest.RandomHex(4), g.device, map[string]paho.MessageHandler{
		topics.Events: func(_ paho.Client, m paho.Message) {
			d.mu.Lock()
			d.events = append(d.events, append([]byte(nil), m.Payload()...))
			d.mu.Unlock()
		},
		topics.Stats: func(_ paho.Client, m paho.Message) {
			d.mu.Lock()
			d.stats = append([]byte(nil), m.Payload()...)
			d.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatalf("test client: %v", err)
	}
	d.c = c
	return d
}

func (d *daemon) exited() bool { return !d.p.Running() }

func (d *daemon) stop() {
	d.c.Disconnect(100)
	d.p.Stop(d.t)
}

// enrol sends a signed add of one photo and waits for the reply.
func (d *daemon) enrol(p Person, root string) (mqtt.EnrollReply, error) {
	b, err := os.ReadFile(filepath.Join(root, p.EnrollPhoto()))
	if err != nil {
		return mqtt.EnrollReply{}, err
	}
	r := &mqtt.EnrollRequest{Op: mqtt.OpAdd, SubjectID: p.ID, Name: p.Name(), Images: []string{base64.StdEncoding.EncodeToString(b)}}
	rep, ok, err := d.c.Request(r, d.g.key, 60*time.Second)
	if err != nil {
		return mqtt.EnrollReply{}, err
	}
	if !ok {
		return mqtt.EnrollReply{}, fmt.Errorf("no reply to the enrolment of %s in 60 s", p.ID)
	}
	return rep, nil
}

// framesIn reads facegate_camera_frames_in_total and
// facegate_frames_acquired_total from /metrics.
func (g *gate) framesIn() (uint64, int64, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", g.metricsPort))
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	in, acq := -1.0, -1.0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		switch f[0] {
		case "facegate_camera_frames_in_total":
			in, _ = strconv.ParseFloat(f[1], 64)
		case "facegate_frames_acquired_total":
			acq, _ = strconv.ParseFloat(f[1], 64)
		}
	}
	if in < 0 {
		return 0, 0, fmt.Errorf("facegate_camera_frames_in_total not in /metrics")
	}
	return uint64(in), int64(acq), nil
}

func emptyFrame(t *testing.T, path string) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 640, 480))
	stddraw.Draw(img, img.Bounds(), &image.Uniform{color.RGBA{88, 92, 96, 255}}, image.Point{}, stddraw.Src)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := jpeg.Encode(f, img, nil); err != nil {
		t.Fatal(err)
	}
}

// TestDoorScenario: people enrolled one-shot over signed MQTT, then the
// visits played as a paced 640x480 MJPEG clip through `facegate run`, and
// every visit graded from the published events (build/door/report.md).
func TestDoorScenario(t *testing.T) {
	started := time.Now()
	_, err := os.Stat(*binFlag)
	need(t, "the facegate binary", err)
	_, err = os.Stat(*facesFlag)
	need(t, "the face data ../shared/data/faces", err)
	out, _ := filepath.Abs(*outFlag)
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	g := newGate(t, t.TempDir())
	_, err = os.Stat(filepath.Join(g.models, "decision.json"))
	need(t, "the exported models and decision.json (make models)", err)

	plan, err := NewPlan(PlanConfig{Root: *facesFlag, Source: "lfw__", MinPhotos: 3, Enrolled: *enrolFlag + *reserveFlag, Strangers: *strangersFlag,
		Seed: *seedFlag, Exclude: Doubles})
	if err != nil {
		t.Fatal(err)
	}

	// 1. Enrolment, the camera looking at an empty scene.
	cam := filepath.Join(g.dir, "empty")
	os.Mkdir(cam, 0o755)
	emptyFrame(t, filepath.Join(cam, "000.jpg"))
	d := startDaemon(t, g, cam, 2, true)
	var enrolled []Person
	var refused []string
	enrolStart := time.Now()
	for _, p := range plan.Candidates {
		if len(enrolled) == *enrolFlag {
			break
		}
		rep, err := d.enrol(p, *facesFlag)
		if err != nil {
			t.Fatalf("%v\n%s", err, daemontest.Tail(d.p.Logs.String(), 4000))
		}
		if rep.Status != mqtt.ReplyOK {
			s := fmt.Sprintf("%s: %s", p.ID, rep.Code)
			if rep.ConflictWith != "" {
				s += " with " + rep.ConflictWith
			}
			refused = append(refused, s)
			continue
		}
		enrolled = append(enrolled, p)
	}
	enrolWall := time.Since(enrolStart)
	if len(enrolled) < *enrolFlag {
		t.Fatalf("only %d of %d enrolled (refused: %v)", len(enrolled), *enrolFlag, refused)
	}
	d.stop()
	os.WriteFile(filepath.Join(out, "daemon-enrol.log"), []byte(d.p.Logs.String()), 0o644)

	// 2. The clip.
	visits := Visits(enrolled, plan.Strangers, *photosFlag, *seedFlag)
	cfg := DefaultClipConfig(*fpsFlag)
	cfg.LeadSeconds = 4 // the daemon plays from its start; the test subscribes once it is ready
	clipPath := filepath.Join(out, "clip.mjpeg")
	f, err := os.Create(clipPath)
	if err != nil {
		t.Fatal(err)
	}
	clip, err := WriteClip(f, *facesFlag, visits, cfg)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d enrolled in %s (%d refused), clip of %d frames (%.0f s at %g fps), %d visits", len(enrolled), enrolWall.Round(time.Second), len(refused),
		clip.Frames, float64(clip.Frames) / *fpsFlag, *fpsFlag, len(visits))

	// 3. The visits, through a new daemon on the same state.
	playStart := time.Now()
	d = startDaemon(t, g, clipPath, *fpsFlag, false) // it stops at the end of the clip
	var samples []Sample
	deadline := time.Now().Add(time.Duration(3*float64(clip.Frames) / *fpsFlag * float64(time.Second)) + time.Minute)
	for {
		n, acq, err := g.framesIn()
		if err == nil {
			samples = append(samples, Sample{At: time.Now(), Frames: n, Acquired: acq})
		}
		if (err == nil && n >= clip.Frames) || d.exited() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the clip did not finish playing by %s (%d samples)", deadline, len(samples))
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // the last events leave the outbox
	playWall := time.Since(playStart)
	d.mu.Lock()
	raw, stats := d.events, d.stats
	d.mu.Unlock()
	d.stop()
	os.WriteFile(filepath.Join(out, "daemon-visits.log"), []byte(d.p.Logs.String()), 0o644)

	var events []Event
	var jl bytes.Buffer
	for _, b := range raw {
		var e Event
		if err := json.Unmarshal(b, &e); err != nil {
			t.Errorf("event %s: %v", b, err)
			continue
		}
		events = append(events, e)
		jl.Write(b)
		jl.WriteByte('\n')
	}
	os.WriteFile(filepath.Join(out, "events.jsonl"), jl.Bytes(), 0o644)
	clock, err := NewClock(samples)
	if err != nil {
		t.Fatal(err)
	}
	res := Grade(visits, events, clock, samples, cfg.FPS*0.5)

	load, _ := os.ReadFile("/proc/loadavg")
	meta := Meta{Command: "make door-scenario", When: started, FPS: *fpsFlag, Enrolled: len(enrolled), Refused: refused, ClipFrames: clip.Frames,
		Wall: time.Since(started), LoadAvg: strings.Join(strings.Fields(string(load))[:3], " ") + " at the end", Settings: g.settings(),
		Eligible: plan.Eligible, PhotosShown: *photosFlag}
	for _, e := range events {
		if e.GallerySize != nil {
			meta.Threshold = fmt.Sprintf("gallery_size %d, target_fpir %g, threshold %.2f, required_margin %.2f", *e.GallerySize, e.TargetFPIR, e.Threshold, deref(e.RequiredMargin))
			break
		}
	}
	var st struct {
		FPS     float64            `json:"fps"`
		Latency map[string]float64 `json:"latency"`
	}
	if json.Unmarshal(stats, &st) == nil && st.FPS > 0 {
		meta.DaemonFPS = fmt.Sprintf("%.1f frames analysed per second at the last stats (camera %g fps), capture-to-event latency p50 %.0f ms, p95 %.0f ms",
			st.FPS, *fpsFlag, st.Latency["p50_ms"], st.Latency["p95_ms"])
	}
	meta.Notes = append(meta.Notes, fmt.Sprintf("Enrolment of %d candidates took %s; playing the clip %s. Events: %d. The clip's frame clock: %d samples of facegate_camera_frames_in_total.",
		len(enrolled)+len(refused), enrolWall.Round(time.Second), playWall.Round(time.Second), len(events), len(samples)))
	var rb bytes.Buffer
	if err := WriteReport(&rb, res, meta); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(out, "report.md"), rb.Bytes(), 0o644)
	js, _ := json.MarshalIndent(map[string]any{"meta": meta, "genuine": res.Genuine, "stranger": res.Stranger, "genuine_n": res.GenuineN, "stranger_n": res.StrangerN,
		"false_grants": len(res.FalseGrants), "split": res.Split, "unmatched": len(res.Unmatched), "grant_ms": res.GrantMS, "grant_frames": res.GrantFrames,
		"visits": res.Outcomes}, "", " ")
	os.WriteFile(filepath.Join(out, "report.json"), js, 0o644)
	t.Logf("report: %s\n%s", filepath.Join(out, "report.md"), rb.String())

	// The targets.
	if len(res.FalseGrants) != 0 {
		t.Errorf("%d false grants, target 0", len(res.FalseGrants))
	}
	if res.GenuineRate() < TargetGenuineRate {
		t.Errorf("%.1f %% of genuine visits granted, target ≥ %.0f %%", 100*res.GenuineRate(), 100*TargetGenuineRate)
	}
	if len(res.Unmatched) != 0 {
		t.Errorf("%d events no visit explains", len(res.Unmatched))
	}
	if p95 := Percentile(res.GrantMS, 95); *fpsFlag >= 15 && p95 > TargetGrantP95MS {
		t.Errorf("grant latency p95 %.0f ms, target ≤ %d ms at 15 fps", p95, TargetGrantP95MS)
	}
	// Every visit gets an honest event: a decision, or failure_to_acquire.
	if n := res.Genuine["none"] + res.Stranger["none"]; n != 0 {
		t.Errorf("%d visits without an event", n)
	}
}

func deref(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}
