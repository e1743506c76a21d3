//go:build site_e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/facegate/facegate/daemon/auth"
	"github.com/facegate/facegate/daemon/mqtt"
	"github.com/facegate/facegate/enroll/store"
)

func freePort(t testing.TB) int {
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

func writeFile(t testing.TB, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
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

// proc is one facegate process (a NATS member or a gate).
type proc struct {
	t       testing.TB
	name    string
	args    []string
	env     []string
	cmd     *exec.Cmd
	logs    *safeBuffer
	done    chan struct{} // closed when the process has exited
	err     error         // its exit status, once done is closed
	started time.Time
}

func (p *proc) start() {
	p.t.Helper()
	p.logs = &safeBuffer{}
	p.done = make(chan struct{})
	p.cmd = exec.Command(*binFlag, p.args...)
	p.cmd.Env = p.env
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.cmd.WaitDelay = 5 * time.Second // Wait returns even if something else holds the log pipe
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	cmd, done := p.cmd, p.done
	go func() { p.err = cmd.Wait(); close(done) }()
}

// waitLog waits for a log line containing s and returns when it was seen.
func (p *proc) waitLog(s string, d time.Duration) time.Time {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(p.logs.String(), s) {
		select {
		case <-p.done:
			p.t.Fatalf("%s exited waiting for %q: %v\n%s", p.name, s, p.err, tail(p.logs.String()))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: no %q after %s\n%s", p.name, s, d, tail(p.logs.String()))
		}
	}
	return time.Now()
}

func tail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}

func (p *proc) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits.
func (p *proc) stop() {
	if !p.running() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		select {
		case <-p.done:
			p.t.Errorf("%s did not stop within 30 s of SIGTERM", p.name)
		case <-time.After(30 * time.Second):
			p.t.Errorf("%s (pid %d) still running 30 s after SIGTERM and 30 s after SIGKILL", p.name, p.cmd.Process.Pid)
		}
	}
}

// kill9 kills the process with SIGKILL.
func (p *proc) kill9() {
	if !p.running() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// gate is a running `facegate run` and an MQTT client of its broker.
type gate struct {
	*proc
	id, state, galleryKey string
	mqttPort              int
	cl                    paho.Client
	topics                mqtt.Topics
	opKey                 auth.Key

	mu      sync.Mutex
	replies map[string]chan mqtt.EnrollReply
	events  []mqttEvent
}

type mqttEvent struct {
	ID       string    `json:"id"`
	Decision string    `json:"decision"`
	Time     time.Time `json:"time"`
	seen     time.Time
}

func (g *gate) connect() {
	g.t.Helper()
	if g.cl != nil && g.cl.IsConnected() {
		g.cl.Disconnect(50)
	}
	opts := paho.NewClientOptions().AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", g.mqttPort)).SetClientID("e2e-" + randomHex(4)).
		SetCleanSession(true).SetAutoReconnect(false)
	g.cl = paho.NewClient(opts)
	if tok := g.cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		g.t.Fatalf("%s: mqtt: %v", g.id, tok.Error())
	}
	tok := g.cl.Subscribe(g.topics.Base+"/enroll/reply/+", 1, func(_ paho.Client, m paho.Message) {
		var r mqtt.EnrollReply
		if json.Unmarshal(m.Payload(), &r) != nil {
			return
		}
		id := strings.TrimPrefix(m.Topic(), g.topics.Base+"/enroll/reply/")
		g.mu.Lock()
		ch := g.replies[id]
		g.mu.Unlock()
		if ch != nil {
			select {
			case ch <- r:
			default:
			}
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		g.t.Fatalf("%s: subscribe: %v", g.id, tok.Error())
	}
	tok = g.cl.Subscribe(g.topics.Events, 1, func(_ paho.Client, m paho.Message) {
		var e mqttEvent
		if json.Unmarshal(m.Payload(), &e) != nil || e.ID == "" {
			return
		}
		e.seen = time.Now()
		g.mu.Lock()
		g.events = append(g.events, e)
		g.mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		g.t.Fatalf("%s: subscribe: %v", g.id, tok.Error())
	}
}

// request sends a signed enrollment request and waits for its reply.
func (g *gate) request(r *mqtt.EnrollRequest, wait time.Duration) (mqtt.EnrollReply, bool) {
	g.t.Helper()
	r.RequestID = randomHex(8)
	a, err := mqtt.Sign(g.opKey, r, g.id, time.Now())
	if err != nil {
		g.t.Fatal(err)
	}
	r.Auth = a
	b, _ := json.Marshal(r)
	ch := make(chan mqtt.EnrollReply, 2)
	g.mu.Lock()
	g.replies[r.RequestID] = ch
	g.mu.Unlock()
	if tok := g.cl.Publish(g.topics.EnrollRequest, 1, false, b); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		g.t.Fatalf("%s: publish: %v", g.id, tok.Error())
	}
	select {
	case rep := <-ch:
		return rep, true
	case <-time.After(wait):
		return mqtt.EnrollReply{}, false
	}
}

func (g *gate) eventIDs() []mqttEvent {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]mqttEvent(nil), g.events...)
}

// gallery reads the gate's gallery file (the gate must be stopped).
func (g *gate) gallery() map[string][]store.Template {
	g.t.Helper()
	b, err := os.ReadFile(g.galleryKey)
	if err != nil {
		g.t.Fatal(err)
	}
	id, enc, _ := strings.Cut(strings.TrimSpace(string(b)), ":")
	sec, _ := base64.StdEncoding.DecodeString(enc)
	k, err := store.NewKey(id, sec)
	if err != nil {
		g.t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(g.state, "gallery.db"), k, store.Options{ReadOnly: true})
	if err != nil {
		g.t.Fatalf("%s: %v", g.id, err)
	}
	defer st.Close()
	out := map[string][]store.Template{}
	err = st.ForEach(func(p store.Person) error {
		out[p.ID+"\x00"+p.DisplayName] = p.Templates
		return nil
	})
	if err != nil {
		g.t.Fatalf("%s: %v", g.id, err)
	}
	return out
}

// ed25519Key makes a gate key: the seed file and the public key line.
func ed25519Key(t testing.TB, dir, id string) (string, string) {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	rand.Read(seed)
	path := writeFile(t, filepath.Join(dir, id+".seed"), base64.StdEncoding.EncodeToString(seed)+"\n")
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	return path, id + " " + base64.StdEncoding.EncodeToString(pub)
}

func secretLine(id string) (string, []byte) {
	sec := make([]byte, 32)
	rand.Read(sec)
	return id + ":" + base64.StdEncoding.EncodeToString(sec) + "\n", sec
}

func envWithout(prefix string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, prefix) {
			out = append(out, kv)
		}
	}
	return out
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func ctxT(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
