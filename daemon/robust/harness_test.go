//go:build robust

package robust

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
		device: "robust-" + daemontest.RandomHex(3), port: daemontest.FreePort(t)}
	os.Mkdir(s.camera, 0o755)
	b, err := os.ReadFile(repoFile(t, "testdata/coffee.jpg")) // no face: the engine idles
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(s.camera, "000.jpg"), b, 0o644)
	s.key = daemontest.WriteKeys(t, s.keys, s.gkey)
	return s
}

func (s *site) env() []string {
	run := daemontest.RunConfig{Device: s.device, State: s.state, Models: daemontest.ModelsDir("", "../../build/models"),
		Camera: s.camera, FPS: 2, Loop: true, MQTTPort: s.port, EnrollKeys: s.keys, GalleryKey: s.gkey}
	return append(append(daemontest.EnvWithout("FACEGATE_"), run.Env()...), "FACEGATE_CAMERA_WIDTH=640", "FACEGATE_CAMERA_HEIGHT=480")
}

// daemon is a running `facegate run`.
type daemon struct {
	t  *testing.T
	s  *site
	p  *daemontest.Process
	c  *daemontest.Client
	cl paho.Client
}

func start(t *testing.T, s *site, extraEnv ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, s: s, p: &daemontest.Process{Name: "daemon", Bin: bin(t), Args: []string{"run"}, Env: append(s.env(), extraEnv...)}}
	if err := d.p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.stop)
	if _, err := d.p.WaitLog("msg=ready", 90*time.Second, 100*time.Millisecond); err != nil {
		t.Fatalf("daemon not ready: %v\n%s", err, d.p.Logs.String())
	}
	c, err := daemontest.Connect(s.port, "robust-"+daemontest.RandomHex(4), s.device, nil)
	if err != nil {
		t.Fatalf("test client: %v", err)
	}
	d.c, d.cl = c, c.Paho
	return d
}

func (d *daemon) alive() bool { return d.p.Running() }

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop() {
	d.c.Disconnect(100)
	d.p.Stop(d.t)
}

func (d *daemon) rssKB() int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.p.Cmd.Process.Pid))
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
func (d *daemon) expect(id string) chan mqtt.EnrollReply { return d.c.Expect(id) }

func (d *daemon) publish(payload []byte) {
	d.t.Helper()
	if err := d.c.Publish(payload); err != nil {
		d.t.Fatal(err)
	}
}

// send publishes payload and waits for the reply to id.
func (d *daemon) send(id string, payload []byte, wait time.Duration) (mqtt.EnrollReply, bool) {
	d.t.Helper()
	r, ok, err := d.c.Send(id, payload, wait)
	if err != nil {
		d.t.Fatal(err)
	}
	return r, ok
}

// signed builds a signed request payload (id filled in when empty).
func (d *daemon) signed(r *mqtt.EnrollRequest, key auth.Key, at time.Time) []byte {
	d.t.Helper()
	b, err := d.c.Signed(r, key, at)
	if err != nil {
		d.t.Fatal(err)
	}
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

func randomHex(n int) string { return daemontest.RandomHex(n) }
