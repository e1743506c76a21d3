//go:build site_e2e

package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/facegate/facegate/daemon/auth"
	"github.com/facegate/facegate/daemon/mqtt"
	"github.com/facegate/facegate/enroll/store"
	"github.com/facegate/facegate/internal/daemontest"
)

func freePort(t testing.TB) int { return daemontest.FreePort(t) }

func randomHex(n int) string { return daemontest.RandomHex(n) }

func writeFile(t testing.TB, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// proc is one facegate process (a NATS member or a gate).
type proc struct {
	t    testing.TB
	name string
	args []string
	env  []string
	logs *daemontest.LogBuffer // of the latest start
	p    daemontest.Process
}

func (p *proc) start() {
	p.t.Helper()
	p.p.Name, p.p.Bin, p.p.Args, p.p.Env = p.name, *binFlag, p.args, p.env
	if err := p.p.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.logs = p.p.Logs
}

// waitLog waits for a log line containing s and returns when it was seen.
func (p *proc) waitLog(s string, d time.Duration) time.Time {
	p.t.Helper()
	at, err := p.p.WaitLog(s, d, 20*time.Millisecond)
	if err != nil {
		p.t.Fatalf("%v\n%s", err, tail(p.logs.String()))
	}
	return at
}

func tail(s string) string {
	if len(s) > 4000 {
		return "..." + daemontest.Tail(s, 4000)
	}
	return s
}

// stop sends SIGTERM and waits.
func (p *proc) stop() { p.p.Stop(p.t) }

// kill9 kills the process with SIGKILL.
func (p *proc) kill9() { p.p.Kill9() }

// gate is a running `facegate run` and an MQTT client of its broker.
type gate struct {
	*proc
	id, state, galleryKey string
	mqttPort              int
	c                     *daemontest.Client
	topics                mqtt.Topics
	opKey                 auth.Key
	replies               map[string]chan mqtt.EnrollReply // unused: daemontest.Client routes the replies

	mu     sync.Mutex
	events []mqttEvent
}

type mqttEvent struct {
	ID       string    `json:"id"`
	Decision string    `json:"decision"`
	Time     time.Time `json:"time"`
	seen     time.Time
}

func (g *gate) connect() {
	g.t.Helper()
	g.c.Disconnect(50)
	c, err := daemontest.Connect(g.mqttPort, "e2e-"+randomHex(4), g.id, map[string]paho.MessageHandler{
		g.topics.Events: func(_ paho.Client, m paho.Message) {
			var e mqttEvent
			if json.Unmarshal(m.Payload(), &e) != nil || e.ID == "" {
				return
			}
			e.seen = time.Now()
			g.mu.Lock()
			g.events = append(g.events, e)
			g.mu.Unlock()
		},
	})
	if err != nil {
		g.t.Fatalf("%s: mqtt: %v", g.id, err)
	}
	g.c = c
}

// request sends a signed enrollment request and waits for its reply.
func (g *gate) request(r *mqtt.EnrollRequest, wait time.Duration) (mqtt.EnrollReply, bool) {
	g.t.Helper()
	r.RequestID = randomHex(8)
	rep, ok, err := g.c.Request(r, g.opKey, wait)
	if err != nil {
		g.t.Fatalf("%s: %v", g.id, err)
	}
	return rep, ok
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

func envWithout(prefix string) []string { return daemontest.EnvWithout(prefix) }

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
