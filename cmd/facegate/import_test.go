package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/facegate/facegate/daemon"
	"github.com/facegate/facegate/daemon/auth"
	"github.com/facegate/facegate/daemon/mqtt"
	"github.com/facegate/facegate/decision"
	"github.com/facegate/facegate/enroll/importer"
	"github.com/facegate/facegate/infer"
)

// TestEnrollImportE2E runs `facegate enroll import` against a real daemon
// (models, encrypted gallery, embedded broker, signed requests): good rows
// are enrolled, a photo without a face, a missing file and a second id for
// an enrolled person are refused; the same import run again sends nothing
// and says so; a person deleted afterwards leaves nothing behind (get and
// list know nothing of them). It needs libtensorflow, the exported models
// and ../shared/data (skipped without them, failed under CI=true).
func TestEnrollImportE2E(t *testing.T) {
	data := infer.TestDataDir(t)
	models := filepath.Dir(infer.TestModelDir(t, "dlib-resnet-v1"))
	infer.TestModelDir(t, "sface-2021dec")
	infer.TestModelDir(t, "blazeface-short")
	dir := t.TempDir()
	secret := make([]byte, 32)
	rand.Read(secret)
	keys := filepath.Join(dir, "enroll-keys")
	os.WriteFile(keys, []byte("ops:"+base64.StdEncoding.EncodeToString(secret)+"\n"), 0o600)
	gkey := filepath.Join(dir, "gallery-key")
	gsecret := make([]byte, 32)
	rand.Read(gsecret)
	os.WriteFile(gkey, []byte("g1:"+base64.StdEncoding.EncodeToString(gsecret)+"\n"), 0o600)
	camera := filepath.Join(dir, "camera")
	os.Mkdir(camera, 0o755)
	coffee, err := os.ReadFile(filepath.Join("..", "..", "testdata", "coffee.jpg")) // no face: the engine idles
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(camera, "000.jpg"), coffee, 0o644)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var idb [4]byte
	rand.Read(idb[:])
	device := "import-" + hex.EncodeToString(idb[:])
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "FACEGATE_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	for k, v := range map[string]string{
		"FACEGATE_DEVICE_ID": device, "FACEGATE_STATE_DIR": filepath.Join(dir, "state"), "FACEGATE_MODELS_DIR": models,
		"FACEGATE_CAMERA": camera, "FACEGATE_CAMERA_FPS": "2", "FACEGATE_CAMERA_LOOP": "true",
		"FACEGATE_CAMERA_WIDTH": "640", "FACEGATE_CAMERA_HEIGHT": "480",
		"FACEGATE_MQTT_EMBEDDED": "true", "FACEGATE_MQTT_EMBEDDED_ADDR": addr,
		"FACEGATE_ENROLL_KEYS": keys, "FACEGATE_GALLERY_KEY": gkey, "FACEGATE_CALIBRATION": calibration(t, dir),
		"FACEGATE_MQTT_HA_DISCOVERY": "false", "FACEGATE_METRICS_ADDR": "",
	} {
		t.Setenv(k, v)
	}
	cfg, err := daemon.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := daemon.NewService(cfg, "test", slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { err := svc.Run(ctx); svc.Close(); done <- err }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("daemon stopped with %v", err)
			}
		case <-time.After(daemon.ShutdownTimeout + 5*time.Second):
			t.Error("daemon did not stop in time")
		}
	})
	broker := "tcp://" + addr
	waitOnline(t, broker, mqtt.NewTopics("facegate", device).Status)

	faces := filepath.Join(data, "faces")
	csv := fmt.Sprintf(`id,name,photo
powell,Colin Powell,%[1]s/lfw__Colin_Powell/001.jpg,%[1]s/lfw__Colin_Powell/002.jpg
blair,Tony Blair,%[1]s/lfw__Tony_Blair/001.jpg
brody,Adrien Brody,%[1]s/lfw__Adrien_Brody/001.jpg
nobody,No Face,%[2]s
ghost,Missing,%[3]s/missing.jpg
powell2,Colin Powell again,%[1]s/lfw__Colin_Powell/003.jpg
`, faces, filepath.Join(camera, "000.jpg"), dir)
	csvPath := filepath.Join(dir, "people.csv")
	os.WriteFile(csvPath, []byte(csv), 0o644)
	report := filepath.Join(dir, "report.jsonl")
	importCmd := func() (string, map[string]importer.Result, importer.Summary, error) {
		var stdout, stderr bytes.Buffer
		err := run(ctx, []string{"enroll", "-keys", keys, "-device", device, "-broker", broker, "-timeout", "60s",
			"import", "-csv", csvPath, "-report", report, "-concurrency", "1"}, &stdout, &stderr)
		rows, sum := readReport(t, report)
		return stdout.String(), rows, sum, err
	}

	out, rows, sum, err := importCmd()
	if err == nil || !strings.Contains(err.Error(), "3 of 6 rows not enrolled") {
		t.Errorf("first import: err = %v, want 3 of 6 rows not enrolled", err)
	}
	want := map[string]string{"powell": "enrolled", "blair": "enrolled", "brody": "enrolled",
		"nobody": "refused no_face", "ghost": "refused missing_file", "powell2": "refused duplicate"}
	for id, w := range want {
		r := rows[id]
		got := string(r.Status)
		if r.Status == importer.Warning {
			got = "enrolled" // a borderline photo is enrolled with a warning
		}
		if r.Code != "" {
			got += " " + r.Code
		}
		if got != w {
			t.Errorf("%s: %s (%s), want %s", id, got, r.Reason, w)
		}
	}
	if rows["powell2"].ConflictWith != "powell" {
		t.Errorf("powell2: conflict_with %q, want powell", rows["powell2"].ConflictWith)
	}
	if sum.Sent != 5 || sum.PhotosEnrolled != 4 {
		t.Errorf("first import: %+v, want 5 requests sent (the missing file is not), 4 photos enrolled", sum)
	}
	t.Logf("first import: %s", strings.TrimSpace(out))

	out, _, sum, err = importCmd()
	if !strings.HasPrefix(out, "nothing to do") || sum.Sent != 0 || sum.Skipped != 3 {
		t.Errorf("second import: %q, %+v: want nothing sent and said so", out, sum)
	}
	if err == nil {
		t.Error("second import: the refused rows are still not enrolled, want exit 1")
	}

	// Delete brody: nothing of them is left.
	ring, err := auth.LoadKeyRing(keys)
	if err != nil {
		t.Fatal(err)
	}
	g := importer.NewMQTTGate(ring.Current(), "facegate", device, 30*time.Second, nil)
	cl := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID("import-test").SetOnConnectHandler(g.OnConnect))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer cl.Disconnect(100)
	g.Attach(cl)
	do := func(op mqtt.EnrollOp, id string) mqtt.EnrollReply {
		rep, err := g.Do(ctx, mqtt.EnrollRequest{Op: op, SubjectID: id})
		if err != nil {
			t.Fatalf("%s %s: %v", op, id, err)
		}
		return rep
	}
	if rep := do(mqtt.OpGet, "brody"); rep.Status != mqtt.ReplyOK || rep.Person == nil || rep.Person.Templates < 1 || len(rep.Person.Photos) != 1 {
		t.Fatalf("get brody before delete: %+v", rep)
	}
	if rep := do(mqtt.OpDelete, "brody"); rep.Status != mqtt.ReplyOK {
		t.Fatalf("delete brody: %+v", rep)
	}
	if rep := do(mqtt.OpGet, "brody"); rep.Code != mqtt.CodeUnknownSubject || rep.Person != nil {
		t.Errorf("get brody after delete: %+v, want unknown_subject", rep)
	}
	for _, p := range do(mqtt.OpList, "").People {
		if p.ID == "brody" {
			t.Errorf("brody still listed after delete: %+v", p)
		}
	}
}

// calibration is the repository's decision calibration when it has been
// made, else one for the two default towers with plausible numbers:
// enrollment does not use it, but the daemon will not start without one.
func calibration(t *testing.T, dir string) string {
	t.Helper()
	if p, err := filepath.Abs(filepath.Join("..", "..", "models", "calibration", "decision.json")); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	vm := decision.VisitModel{MaxFrames: 4, Samples: 1000, TailExceed: 0.01, TailLogit: -3, TailScale: 1, Margin: 1}
	cal := &decision.Calibration{Version: decision.Version,
		Towers: []decision.Tower{
			{Name: "dlib", Model: "dlib-resnet-v1", Metric: decision.Euclidean, ImpostorMean: 0.8, ImpostorStd: 0.08},
			{Name: "sface", Model: "sface-2021dec", Metric: decision.Cosine, ImpostorMean: 0.0, ImpostorStd: 0.09},
		},
		Heads: map[string]decision.Head{"dlib+sface": {Bias: -12, Weights: []float64{1.5, 1.5}},
			"dlib": {Bias: -10, Weights: []float64{2}}, "sface": {Bias: -10, Weights: []float64{2}}},
		Visits:     map[string]decision.VisitModel{"dlib+sface": vm, "dlib": vm, "sface": vm},
		Provenance: decision.Provenance{Data: "test", Command: "none", Date: "2026-12-05"}}
	p := filepath.Join(dir, "decision.json")
	if err := cal.Save(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitOnline waits for the daemon's retained online status.
func waitOnline(t *testing.T, broker, topic string) {
	t.Helper()
	online := make(chan struct{}, 1)
	cl := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID("import-wait").
		SetConnectRetry(true).SetConnectRetryInterval(200 * time.Millisecond))
	if tok := cl.Connect(); !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
		t.Fatalf("connect to the daemon's broker: %v", tok.Error())
	}
	defer cl.Disconnect(100)
	cl.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
		if string(m.Payload()) == mqtt.StatusOnline {
			select {
			case online <- struct{}{}:
			default:
			}
		}
	})
	select {
	case <-online:
	case <-time.After(90 * time.Second):
		t.Fatal("the daemon never came online")
	}
}

// readReport reads an import report: rows by id and the summary line.
func readReport(t *testing.T, path string) (map[string]importer.Result, importer.Summary) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := map[string]importer.Result{}
	var sum importer.Summary
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			importer.Result
			Summary *importer.Summary `json:"summary"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("report: %v", err)
		}
		if line.Summary != nil {
			sum = *line.Summary
			continue
		}
		rows[line.ID] = line.Result
	}
	return rows, sum
}
