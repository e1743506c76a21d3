package daemontest

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/facegate/facegate/daemon/auth"
	"github.com/facegate/facegate/daemon/mqtt"
)

func shell(t *testing.T, script string) *Process {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	return &Process{Name: "sh", Bin: sh, Args: []string{"-c", script}, Env: EnvWithout("FACEGATE_")}
}

func TestProcessWaitLogAndStop(t *testing.T) {
	p := shell(t, `echo starting; sleep 0.2; echo "level=INFO msg=ready"; trap 'echo bye; exit 0' TERM; while :; do sleep 0.05; done`)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill9() })
	if _, err := p.WaitLog("msg=ready", 10*time.Second, 10*time.Millisecond); err != nil {
		t.Fatalf("%v\n%s", err, p.Logs.String())
	}
	if !p.Running() {
		t.Fatal("not running after ready")
	}
	if _, err := p.WaitLog("never printed", 100*time.Millisecond, 10*time.Millisecond); err == nil || !strings.Contains(err.Error(), "no \"never printed\" after") {
		t.Fatalf("WaitLog of a missing line: %v", err)
	}
	p.Stop(t)
	if p.Running() {
		t.Fatal("still running after Stop")
	}
	if !strings.Contains(p.Logs.String(), "bye") {
		t.Fatalf("no SIGTERM handler output:\n%s", p.Logs.String())
	}
}

func TestProcessExitedBeforeLine(t *testing.T) {
	p := shell(t, `echo oops; exit 3`)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	_, err := p.WaitLog("msg=ready", 10*time.Second, 10*time.Millisecond)
	var ex *ExitedError
	if !errors.As(err, &ex) || ex.Want != "msg=ready" {
		t.Fatalf("WaitLog: %v, want an ExitedError", err)
	}
	var ee *exec.ExitError
	if !errors.As(ex.Err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("exit status %v, want 3", ex.Err)
	}
	if err := (&Process{Name: "x", Bin: filepath.Join(t.TempDir(), "missing")}).Start(); err == nil {
		t.Fatal("a missing binary started")
	}
}

func TestRunConfigEnv(t *testing.T) {
	env := RunConfig{Device: "d", State: "/s", Models: "/m", Camera: "/c", FPS: 2.5, Loop: true, MQTTPort: 1883, EnrollKeys: "/k", GalleryKey: "/g"}.Env()
	want := map[string]string{"FACEGATE_DEVICE_ID": "d", "FACEGATE_CAMERA_FPS": "2.5", "FACEGATE_CAMERA_LOOP": "true",
		"FACEGATE_MQTT_EMBEDDED_ADDR": "127.0.0.1:1883", "FACEGATE_METRICS_ADDR": "", "FACEGATE_MQTT_HA_DISCOVERY": "false"}
	got := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := got[k]; dup {
			t.Errorf("%s twice", k)
		}
		got[k] = v
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s=%q, want %q", k, got[k], v)
		}
	}
	t.Setenv("FACEGATE_SOMETHING", "x")
	for _, kv := range EnvWithout("FACEGATE_") {
		if strings.HasPrefix(kv, "FACEGATE_") {
			t.Errorf("EnvWithout kept %s", kv)
		}
	}
}

func TestWriteKeys(t *testing.T) {
	dir := t.TempDir()
	k := WriteKeys(t, filepath.Join(dir, "enroll-keys"), filepath.Join(dir, "gallery-key"))
	b, err := os.ReadFile(filepath.Join(dir, "enroll-keys"))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := auth.ParseKeyRing(b)
	if err != nil {
		t.Fatal(err)
	}
	if ring.Current().ID != "ops" || k.ID != "ops" {
		t.Fatalf("key ids %q %q, want ops", ring.Current().ID, k.ID)
	}
	if g, _ := os.ReadFile(filepath.Join(dir, "gallery-key")); !strings.HasPrefix(string(g), "g1:") {
		t.Fatalf("gallery key %q", g)
	}
}

// TestClientRequestReply: a signed request reaches the request topic and
// verifies; the reply published on its reply topic comes back from
// Request, and an unanswered one reports false.
func TestClientRequestReply(t *testing.T) {
	b := Broker(t)
	_, ps, _ := net.SplitHostPort(b.Addr())
	port, _ := strconv.Atoi(ps)
	dir := t.TempDir()
	key := WriteKeys(t, filepath.Join(dir, "k"), filepath.Join(dir, "g"))
	ring, _ := auth.NewKeyRing(key)
	v, _ := auth.NewVerifier(ring, auth.VerifierOptions{})
	verify := mqtt.VerifyWith(v, "door-x")

	topics := mqtt.NewTopics("facegate", "door-x")
	gate := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL()).SetClientID("gate"))
	if tok := gate.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer gate.Disconnect(50)
	tok := gate.Subscribe(topics.EnrollRequest, 1, func(c paho.Client, m paho.Message) {
		r, err := mqtt.DecodeEnrollRequest(m.Payload(), mqtt.Limits{})
		if err != nil || r.SubjectID == "silent" {
			return
		}
		rep := mqtt.EnrollReply{RequestID: r.RequestID, Status: mqtt.ReplyOK, SubjectID: r.SubjectID}
		if err := verify(context.Background(), r); err != nil {
			rep.Status = mqtt.ReplyError
		}
		js, _ := json.Marshal(rep)
		c.Publish(topics.EnrollReply(r.RequestID), 1, false, js)
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}

	c, err := Connect(port, "test-"+RandomHex(4), "door-x", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(50)
	r := &mqtt.EnrollRequest{Op: mqtt.OpDelete, SubjectID: "alice"}
	rep, ok, err := c.Request(r, key, 5*time.Second)
	if err != nil || !ok {
		t.Fatalf("request: ok=%v err=%v", ok, err)
	}
	if r.RequestID == "" || rep.RequestID != r.RequestID || rep.Status != mqtt.ReplyOK || rep.SubjectID != "alice" {
		t.Fatalf("reply %+v to %s", rep, r.RequestID)
	}
	other, _ := auth.NewKey("ops", make([]byte, 32))
	if rep, ok, err := c.Request(&mqtt.EnrollRequest{Op: mqtt.OpDelete, SubjectID: "bob"}, other, 5*time.Second); err != nil || !ok || rep.Status != mqtt.ReplyError {
		t.Fatalf("a request signed with another secret: %+v ok=%v err=%v", rep, ok, err)
	}
	if _, ok, err := c.Request(&mqtt.EnrollRequest{Op: mqtt.OpDelete, SubjectID: "silent"}, key, 300*time.Millisecond); err != nil || ok {
		t.Fatalf("an unanswered request: ok=%v err=%v", ok, err)
	}
}

// TestNotImportedByProduct: test support (internal/*test: daemontest,
// mqtttest, imagetest) stays out of the product; only _test.go files and
// other test support import it.
func TestNotImportedByProduct(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "github.com/facegate/facegate/...")
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	support := func(p string) bool {
		return strings.HasPrefix(p, "github.com/facegate/facegate/internal/") && strings.HasSuffix(p, "test")
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if support(f[0]) {
			continue // test support may build on test support
		}
		for _, imp := range f[1:] {
			if support(imp) {
				t.Errorf("%s imports the test support package %s", f[0], imp)
			}
		}
	}
}
