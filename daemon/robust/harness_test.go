//go:build robust

package robust

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/facegate/facegate/daemon/auth"
	"github.com/facegate/facegate/daemon/mqtt"
)

var (
	binFlag   = flag.String("bin", "../../bin/facegate", "the facegate binary under test")
	tableFlag = flag.String("table", "", "write the probe table (Markdown) to this file")
)

// row is one probe's line in the table.
type row struct{ probe, expected, observed string }

// tmpPath matches the test's temporary folders, so the table reads the
// same on every run.
var tmpPath = regexp.MustCompile(`/tmp/Test[^/ ]*/[0-9]+/`)

var (
	tableMu sync.Mutex
	table   []row
)

// record adds a probe's outcome to the table; a failed expectation also
// fails the test.
func record(t *testing.T, probe, expected, observed string, ok bool) {
	t.Helper()
	observed = tmpPath.ReplaceAllString(observed, "$$TMP/")
	tableMu.Lock()
	mark := "pass"
	if !ok {
		mark = "**FAIL**"
	}
	table = append(table, row{probe, expected, observed + " (" + mark + ")"})
	tableMu.Unlock()
	if !ok {
		t.Errorf("%s: expected %s, observed %s", probe, expected, observed)
	}
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if *tableFlag != "" {
		var b strings.Builder
		b.WriteString("| probe | expected | observed |\n|---|---|---|\n")
		for _, r := range table {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", r.probe, r.expected, r.observed)
		}
		if err := os.WriteFile(*tableFlag, []byte(b.String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

func bin(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(*binFlag)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the facegate binary %s is missing (make robust builds it): %v", p, err)
	}
	return p
}

func repoFile(t *testing.T, rel string) string {
	t.Helper()
	return filepath.Join("..", "..", rel)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// site is what a daemon runs on: keys, a camera folder, a state folder.
type site struct {
	dir, state, camera, keys, gkey string
	key                            auth.Key
	device                         string
	port                           int
}

func newSite(t *testing.T) *site {
	t.Helper()
	dir := t.TempDir()
	s := &site{dir: dir, state: filepath.Join(dir, "state"), camera: filepath.Join(dir, "camera"), keys: filepath.Join(dir, "enroll-keys"), gkey: filepath.Join(dir, "gallery-key"),
		device: "robust-" + randomHex(3), port: freePort(t)}
	os.Mkdir(s.camera, 0o755)
	b, err := os.ReadFile(repoFile(t, "testdata/coffee.jpg")) // no face: the engine idles
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(s.camera, "000.jpg"), b, 0o644)
	secret := make([]byte, 32)
	rand.Read(secret)
	os.WriteFile(s.keys, []byte("ops:"+base64.StdEncoding.EncodeToString(secret)+"\n"), 0o600)
	gs := make([]byte, 32)
	rand.Read(gs)
	os.WriteFile(s.gkey, []byte("g1:"+base64.StdEncoding.EncodeToString(gs)+"\n"), 0o600)
	s.key, _ = auth.NewKey("ops", secret)
	return s
}

func (s *site) env() []string {
	models := os.Getenv("FACEGATE_MODELS_DIR")
	if models == "" {
		models = "../../build/models"
	}
	models, _ = filepath.Abs(models)
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FACEGATE_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"FACEGATE_DEVICE_ID="+s.device, "FACEGATE_STATE_DIR="+s.state, "FACEGATE_MODELS_DIR="+models,
		"FACEGATE_CAMERA="+s.camera, "FACEGATE_CAMERA_FPS=2", "FACEGATE_CAMERA_LOOP=true",
		"FACEGATE_CAMERA_WIDTH=640", "FACEGATE_CAMERA_HEIGHT=480",
		"FACEGATE_MQTT_EMBEDDED=true", "FACEGATE_MQTT_EMBEDDED_ADDR=127.0.0.1:"+strconv.Itoa(s.port),
		"FACEGATE_ENROLL_KEYS="+s.keys, "FACEGATE_GALLERY_KEY="+s.gkey, "FACEGATE_LOG_LEVEL=info",
		"FACEGATE_METRICS_ADDR=", "FACEGATE_MQTT_HA_DISCOVERY=false",
	)
}

// daemon is a running `facegate run`.
type daemon struct {
	t    *testing.T
	s    *site
	cmd  *exec.Cmd
	logs *safeBuffer
	done chan error
	cl   paho.Client

	mu      sync.Mutex
	replies map[string]chan mqtt.EnrollReply
}

type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T, s *site, extraEnv ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, s: s, logs: &safeBuffer{}, done: make(chan error, 1), replies: map[string]chan mqtt.EnrollReply{}}
	d.cmd = exec.Command(bin(t), "run")
	d.cmd.Env = append(s.env(), extraEnv...)
	d.cmd.Stderr = d.logs
	d.cmd.Stdout = d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(d.stop)
	deadline := time.Now().Add(90 * time.Second)
	for !strings.Contains(d.logs.String(), "msg=ready") {
		select {
		case err := <-d.done:
			t.Fatalf("daemon exited before ready: %v\n%s", err, d.logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon not ready in 90 s:\n%s", d.logs.String())
		}
	}
	opts := paho.NewClientOptions().AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", s.port)).SetClientID("robust-" + randomHex(4)).
		SetCleanSession(true).SetAutoReconnect(false)
	d.cl = paho.NewClient(opts)
	if tok := d.cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("test client: %v", tok.Error())
	}
	topics := mqtt.NewTopics("facegate", s.device)
	tok := d.cl.Subscribe(topics.Base+"/enroll/reply/+", 1, func(_ paho.Client, m paho.Message) {
		var r mqtt.EnrollReply
		if json.Unmarshal(m.Payload(), &r) != nil {
			return
		}
		id := strings.TrimPrefix(m.Topic(), topics.Base+"/enroll/reply/")
		d.mu.Lock()
		ch := d.replies[id]
		d.mu.Unlock()
		if ch != nil {
			select {
			case ch <- r:
			default:
			}
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return d
}

func (d *daemon) alive() bool {
	select {
	case err := <-d.done:
		d.done <- err
		return false
	default:
	}
	return d.cmd.Process.Signal(syscall.Signal(0)) == nil
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop() {
	if d.cl != nil && d.cl.IsConnected() {
		d.cl.Disconnect(100)
	}
	if d.cmd.ProcessState != nil || !d.alive() {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		d.t.Errorf("daemon did not stop within 30 s of SIGTERM")
	}
}

func (d *daemon) rssKB() int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return -1
}

// expect registers interest in a reply before the request is sent.
func (d *daemon) expect(id string) chan mqtt.EnrollReply {
	ch := make(chan mqtt.EnrollReply, 4)
	d.mu.Lock()
	d.replies[id] = ch
	d.mu.Unlock()
	return ch
}

func (d *daemon) publish(payload []byte) {
	d.t.Helper()
	topics := mqtt.NewTopics("facegate", d.s.device)
	if tok := d.cl.Publish(topics.EnrollRequest, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		d.t.Fatalf("publish: %v", tok.Error())
	}
}

// send publishes payload and waits for the reply to id.
func (d *daemon) send(id string, payload []byte, wait time.Duration) (mqtt.EnrollReply, bool) {
	d.t.Helper()
	ch := d.expect(id)
	d.publish(payload)
	select {
	case r := <-ch:
		return r, true
	case <-time.After(wait):
		return mqtt.EnrollReply{}, false
	}
}

// signed builds a signed request payload (id filled in when empty).
func (d *daemon) signed(r *mqtt.EnrollRequest, key auth.Key, at time.Time) []byte {
	d.t.Helper()
	if r.RequestID == "" {
		r.RequestID = randomHex(8)
	}
	a, err := mqtt.Sign(key, r, d.s.device, at)
	if err != nil {
		d.t.Fatal(err)
	}
	r.Auth = a
	b, _ := json.Marshal(r)
	return b
}

func (d *daemon) request(r *mqtt.EnrollRequest) mqtt.EnrollReply {
	d.t.Helper()
	b := d.signed(r, d.s.key, time.Now())
	rep, ok := d.send(r.RequestID, b, 30*time.Second)
	if !ok {
		d.t.Fatalf("no reply to %s %s", r.Op, r.RequestID)
	}
	return rep
}

// people lists the gallery as "id=name/templates" strings.
func (d *daemon) people() []string {
	d.t.Helper()
	rep := d.request(&mqtt.EnrollRequest{Op: mqtt.OpList})
	if rep.Status != mqtt.ReplyOK {
		d.t.Fatalf("list: %+v", rep)
	}
	var out []string
	for _, p := range rep.People {
		out = append(out, fmt.Sprintf("%s=%s/%d", p.ID, p.Name, p.Templates))
	}
	return out
}

func photoB64(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(repoFile(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// runBad runs `facegate ARGS` with the site's environment plus extra and
// returns its exit code and output.
func runBad(t *testing.T, s *site, args []string, extra ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin(t), args...)
	cmd.Env = append(s.env(), extra...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &out
	if args[0] == "config" {
		cmd.Stdout = io.Discard
	}
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		return -1, out.String() + "\n(killed after 60 s)"
	}
	return cmd.ProcessState.ExitCode(), out.String()
}
