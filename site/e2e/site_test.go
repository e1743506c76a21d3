//go:build site_e2e

package e2e

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/facegate/facegate/daemon/auth"
	"github.com/facegate/facegate/daemon/mqtt"
	"github.com/facegate/facegate/enroll/store"
	"github.com/facegate/facegate/site"
)

var (
	binFlag    = flag.String("bin", "../../bin/facegate", "the facegate binary under test")
	peopleFlag = flag.Int("people", 100, "enrolments and removals through gate A (replication delay)")
	scaleFlag  = flag.Int("scale", 10000, "people in the site a new gate joins")
	outFlag    = flag.String("out", "", "write the measured figures (Markdown) to this file")
	modelsFlag = flag.String("models", "../../build/models", "exported models")
)

// towerModels are the templates the loader writes: one per tower model.
var towerModels = []store.Model{{Name: "dlib-resnet-v1", Version: "1.0.0"}, {Name: "sface-2021dec", Version: "1.0.0"}}

type siteRig struct {
	t                           *testing.T
	dir                         string
	nodes                       []*proc
	urls                        []string
	enrollKeys, siteKey, gkFile string
	opKey                       auth.Key
	siteStoreKey                store.Key
	gateSeeds                   map[string]string
	pw                          map[string]string
	loader                      ed25519.PrivateKey
	nc                          *nats.Conn
	js                          jetstream.JetStream
	figures                     []string
}

func (r *siteRig) figure(what, value, note string) {
	r.t.Logf("FIGURE %s: %s (%s)", what, value, note)
	r.figures = append(r.figures, fmt.Sprintf("| %s | %s | %s |", what, value, note))
}

func newRig(t *testing.T) *siteRig {
	if _, err := os.Stat(*binFlag); err != nil {
		t.Fatalf("the facegate binary %s is missing (make site-e2e builds it): %v", *binFlag, err)
	}
	if _, err := os.Stat(filepath.Join(*modelsFlag, "dlib-resnet-v1")); err != nil {
		t.Fatalf("models missing in %s (make models): %v", *modelsFlag, err)
	}
	dir := t.TempDir()
	r := &siteRig{t: t, dir: dir, gateSeeds: map[string]string{}, pw: map[string]string{}}
	// The operator's Ed25519 key, made by the operator's tool: the private
	// key stays here (the test plays the operator), the gates get only
	// the public line (FACEGATE_SITE_OPERATOR_KEYS defaults to ed25519).
	opFile := filepath.Join(dir, "ops.key")
	pubLine, err := exec.Command(*binFlag, "site", "keygen", "-operator", "ops", "-out", opFile).Output()
	if err != nil {
		t.Fatalf("facegate site keygen -operator: %v", err)
	}
	r.enrollKeys = writeFile(t, filepath.Join(dir, "enroll-keys"), string(pubLine))
	opRing, err := auth.LoadKeyRing(opFile)
	if err != nil {
		t.Fatal(err)
	}
	r.opKey = opRing.Current()
	line, sec := secretLine("site1")
	r.siteKey = writeFile(t, filepath.Join(dir, "site-key"), line)
	r.siteStoreKey, _ = store.NewKey("site1", sec)
	var pubs []string
	for _, g := range []string{"gate-a", "gate-b", "gate-c", "gate-d", "loader"} {
		seed, pub := ed25519Key(t, dir, g)
		r.gateSeeds[g] = seed
		pubs = append(pubs, pub)
		r.pw[g] = writeFile(t, filepath.Join(dir, g+".pw"), randomHex(16))
	}
	r.pw["admin"] = writeFile(t, filepath.Join(dir, "admin.pw"), randomHex(16))
	r.gkFile = writeFile(t, filepath.Join(dir, "gate-keys"), strings.Join(pubs, "\n")+"\n")
	b, _ := os.ReadFile(r.gateSeeds["loader"])
	s, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	r.loader = ed25519.NewKeyFromSeed(s)

	ports := make([]int, 6)
	for i := range ports {
		ports[i] = freePort(t)
	}
	var routes []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[3+i]))
		r.urls = append(r.urls, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	users := []string{"admin=" + r.pw["admin"]}
	for _, g := range []string{"gate-a", "gate-b", "gate-c", "gate-d"} {
		users = append(users, g+"="+r.pw[g]+"="+g)
	}
	users = append(users, "loader="+r.pw["loader"]+"=loader")
	for i := range 3 {
		n := &proc{t: t, name: fmt.Sprintf("n%d", i+1), args: []string{"site", "serve"}, env: append(envWithout("FACEGATE_"),
			"FACEGATE_STATE_DIR="+filepath.Join(dir, fmt.Sprintf("n%d", i+1)),
			"FACEGATE_SITE_SERVER_NAME="+fmt.Sprintf("n%d", i+1),
			fmt.Sprintf("FACEGATE_SITE_SERVER_LISTEN=127.0.0.1:%d", ports[i]),
			fmt.Sprintf("FACEGATE_SITE_SERVER_CLUSTER_LISTEN=127.0.0.1:%d", ports[3+i]),
			"FACEGATE_SITE_SERVER_ROUTES="+strings.Join(routes, ","),
			"FACEGATE_SITE_SERVER_USERS="+strings.Join(users, ","),
		)}
		r.nodes = append(r.nodes, n)
		n.start()
		t.Cleanup(n.stop)
	}
	for _, n := range r.nodes {
		n.waitLog("nats member serving", 20*time.Second)
	}
	r.connect()
	// The streams, created by an operator (gate users may not).
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := ctxT(5 * time.Second)
		err := site.EnsureStreams(ctx, r.js, site.StreamOptions{})
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("streams: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return r
}

func (r *siteRig) connect() {
	nc, err := site.Connect(site.ClientConfig{URLs: r.urls, Name: "e2e-admin", User: "admin", PasswordFile: r.pw["admin"]})
	if err != nil {
		r.t.Fatal(err)
	}
	r.nc = nc
	r.js, _ = jetstream.New(nc)
	r.t.Cleanup(nc.Close)
}

func (r *siteRig) startGate(id string) *gate {
	r.t.Helper()
	g := &gate{id: id, state: filepath.Join(r.dir, id), mqttPort: freePort(r.t), topics: mqtt.NewTopics("facegate", id), opKey: r.opKey,
		replies: map[string]chan mqtt.EnrollReply{}}
	os.MkdirAll(g.state, 0o700)
	line, _ := secretLine("g-" + id)
	g.galleryKey = writeFile(r.t, filepath.Join(r.dir, id+".gallery-key"), line)
	cam := filepath.Join(r.dir, id+"-camera")
	os.MkdirAll(cam, 0o755)
	img, err := os.ReadFile("../../testdata/astronaut.jpg")
	if err != nil {
		r.t.Fatal(err)
	}
	os.WriteFile(filepath.Join(cam, "000.jpg"), img, 0o644)
	models, _ := filepath.Abs(*modelsFlag)
	// FACEGATE_PAD=off: the camera is one still photo looped, which passive
	// PAD rightly takes for a presentation attack, and four gates running
	// two more models per frame would crowd 2 cores; PAD is not what this
	// test is about.
	g.proc = &proc{t: r.t, name: id, args: []string{"run"}, env: append(envWithout("FACEGATE_"),
		"FACEGATE_DEVICE_ID="+id, "FACEGATE_STATE_DIR="+g.state, "FACEGATE_MODELS_DIR="+models,
		"FACEGATE_CAMERA="+cam, "FACEGATE_CAMERA_FPS=2", "FACEGATE_CAMERA_LOOP=true",
		"FACEGATE_CAMERA_WIDTH=640", "FACEGATE_CAMERA_HEIGHT=480", "FACEGATE_UNKNOWN_INTERVAL=2s", "FACEGATE_COOLDOWN=2s",
		"FACEGATE_MQTT_EMBEDDED=true", fmt.Sprintf("FACEGATE_MQTT_EMBEDDED_ADDR=127.0.0.1:%d", g.mqttPort),
		"FACEGATE_ENROLL_KEYS="+r.enrollKeys, "FACEGATE_GALLERY_KEY="+g.galleryKey, "FACEGATE_LOG_LEVEL=info",
		"FACEGATE_METRICS_ADDR=", "FACEGATE_MQTT_HA_DISCOVERY=false", "FACEGATE_PAD=off",
		"FACEGATE_SITE_NATS_URLS="+strings.Join(r.urls, ","), "FACEGATE_SITE_NATS_USER="+id, "FACEGATE_SITE_NATS_PASSWORD_FILE="+r.pw[id],
		"FACEGATE_SITE_GATE_KEY="+r.gateSeeds[id], "FACEGATE_SITE_GATE_KEYS="+r.gkFile, "FACEGATE_SITE_KEY="+r.siteKey,
	)}
	g.proc.start()
	r.t.Cleanup(g.proc.stop)
	g.waitLog("msg=ready", 120*time.Second)
	g.connect()
	return g
}

// restart starts a stopped gate again on the same state.
func (r *siteRig) restart(g *gate) {
	g.proc.start()
	g.waitLog("msg=ready", 120*time.Second)
	g.connect()
}

// applied follows every gate's applied sequence through the status
// bucket, with the time each value arrived.
type appliedWatch struct {
	mu   sync.Mutex
	seen map[string][]seqAt
}

type seqAt struct {
	seq uint64
	at  time.Time
}

func (r *siteRig) watchApplied() *appliedWatch {
	ctx, cancel := ctxT(10 * time.Second)
	defer cancel()
	kv, err := r.js.KeyValue(ctx, site.StatusBucket)
	if err != nil {
		r.t.Fatal(err)
	}
	w, err := kv.WatchAll(context.Background(), jetstream.IncludeHistory())
	if err != nil {
		r.t.Fatal(err)
	}
	a := &appliedWatch{seen: map[string][]seqAt{}}
	go func() {
		for e := range w.Updates() {
			if e == nil {
				continue
			}
			now := time.Now()
			var gs site.GateStatus
			if json.Unmarshal(e.Value(), &gs) != nil {
				continue
			}
			a.mu.Lock()
			a.seen[gs.Gate] = append(a.seen[gs.Gate], seqAt{gs.Applied, now})
			a.mu.Unlock()
		}
	}()
	r.t.Cleanup(func() { w.Stop() })
	return a
}

// latest returns the last applied sequence gate reported (0: none).
func (a *appliedWatch) latest(gate string) uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s := a.seen[gate]; len(s) > 0 {
		return s[len(s)-1].seq
	}
	return 0
}

// reached returns when gate first reported an applied sequence >= seq.
func (a *appliedWatch) reached(gate string, seq uint64) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.seen[gate] {
		if s.seq >= seq {
			return s.at, true
		}
	}
	return time.Time{}, false
}

func (r *siteRig) lastSeq() uint64 {
	ctx, cancel := ctxT(10 * time.Second)
	defer cancel()
	s, err := r.js.Stream(ctx, site.GalleryStream)
	if err != nil {
		r.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	return info.State.LastSeq
}

// streamSize returns the gallery stream's bytes and messages.
func (r *siteRig) streamSize() (uint64, uint64) {
	ctx, cancel := ctxT(10 * time.Second)
	defer cancel()
	s, err := r.js.Stream(ctx, site.GalleryStream)
	if err != nil {
		r.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	return info.State.Bytes, max(info.State.Msgs, 1)
}

func (r *siteRig) storedAt(seq uint64) time.Time {
	ctx, cancel := ctxT(10 * time.Second)
	defer cancel()
	s, err := r.js.Stream(ctx, site.GalleryStream)
	if err != nil {
		r.t.Fatal(err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		r.t.Fatal(err)
	}
	return m.Time
}

// loaderChange builds a change as a gate named "loader" would for an
// operator's signed add request.
func (r *siteRig) loaderChange(subject string, badOperator bool) *site.Change {
	key := r.opKey
	if badOperator {
		_, sec := secretLine("ops")
		key, _ = auth.NewKey("ops", sec) // the right id, another secret
	}
	return r.changeBy("loader", key, subject)
}

// changeBy builds a well-formed enrolment as gate origin would, for an add
// request signed with key, with templates sealed under the site key.
func (r *siteRig) changeBy(origin string, key auth.Key, subject string) *site.Change {
	rid := "l-" + randomHex(6)
	body, _ := auth.Body(
		auth.BodyField{Name: "device_id", Value: origin}, auth.BodyField{Name: "request_id", Value: rid},
		auth.BodyField{Name: "op", Value: "add"}, auth.BodyField{Name: "subject_id", Value: subject},
		auth.BodyField{Name: "name", Value: "Loaded " + subject}, auth.BodyField{Name: "frames", Value: "0"},
		auth.BodyField{Name: "images", Value: ""})
	req := auth.Request{Operation: "enroll/add", RequestID: rid, Body: body}
	f, err := auth.Sign(key, req, time.Now())
	if err != nil {
		r.t.Fatal(err)
	}
	c := &site.Change{ID: site.ChangeID(f.KeyID, f.Nonce), Op: site.OpEnrol, SubjectID: subject, Name: "Loaded " + subject, Origin: origin,
		Created: time.Now().UTC(), Request: site.Request{KeyID: f.KeyID, TS: f.Timestamp, Nonce: f.Nonce, Sig: f.Signature, Operation: req.Operation, RequestID: rid, Body: body}}
	var ts []store.Template
	for _, m := range towerModels {
		e := make([]float32, 128)
		var n float64
		for i := range e {
			e[i] = float32(rand.NormFloat64())
			n += float64(e[i] * e[i])
		}
		for i := range e {
			e[i] /= float32(math.Sqrt(n))
		}
		ts = append(ts, store.Template{Model: m, Embedding: e, Created: c.Created})
	}
	if c.Templates, err = site.SealTemplates(r.siteStoreKey, c.ID, ts); err != nil {
		r.t.Fatal(err)
	}
	return c
}

// load publishes n enrolments from the loader, 512 in flight.
func (r *siteRig) load(prefix string, n int) time.Duration {
	start := time.Now()
	var futs []jetstream.PubAckFuture
	for i := range n {
		c := r.loaderChange(fmt.Sprintf("%s%05d", prefix, i), false)
		data, err := site.Encode(c, r.loader)
		if err != nil {
			r.t.Fatal(err)
		}
		f, err := r.js.PublishAsync(site.GallerySubject, data, jetstream.WithMsgID(c.ID), jetstream.WithExpectStream(site.GalleryStream))
		if err != nil {
			r.t.Fatal(err)
		}
		futs = append(futs, f)
		if len(futs) >= 512 {
			r.drain(futs)
			futs = futs[:0]
		}
	}
	r.drain(futs)
	return time.Since(start)
}

func (r *siteRig) drain(futs []jetstream.PubAckFuture) {
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			r.t.Fatalf("load: %v", err)
		case <-time.After(30 * time.Second):
			r.t.Fatal("load: no ack in 30 s")
		}
	}
}

// publishRaw puts data on the gallery stream as it is (refusal probes).
func (r *siteRig) publishRaw(data []byte, msgID string) uint64 {
	ctx, cancel := ctxT(10 * time.Second)
	defer cancel()
	ack, err := r.js.Publish(ctx, site.GallerySubject, data, jetstream.WithMsgID(msgID))
	if err != nil {
		r.t.Fatal(err)
	}
	return ack.Sequence
}

// siteEvents returns the ids of a gate's events in the site's stream, in
// order. A read that fails (a consumer whose node just restarted answers
// "no responders" for a moment) is retried for up to 30 s.
func (r *siteRig) siteEvents(gate string) []string {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ids, err := r.readEvents(gate)
		if err == nil {
			return ids
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("events of %s: %v", gate, err)
		}
		r.t.Logf("events of %s: %v; retrying", gate, err)
		time.Sleep(500 * time.Millisecond)
	}
}

func (r *siteRig) readEvents(gate string) ([]string, error) {
	raw, err := r.readEventsRaw(gate)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(raw))
	for i, b := range raw {
		var e struct {
			ID string `json:"id"`
		}
		json.Unmarshal(b, &e)
		ids[i] = e.ID
	}
	return ids, nil
}

// refusal is a site_change_refused event as the tests read it.
type refusal struct {
	Type     string `json:"type"`
	ID       string `json:"id"`
	ChangeID string `json:"change_id"`
	Origin   string `json:"origin"`
	Reason   string `json:"reason"`
	Error    string `json:"error"`
}

// refusals returns a gate's site_change_refused events by change id.
func (r *siteRig) refusals(gate string) map[string]refusal {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		raw, err := r.readEventsRaw(gate)
		if err == nil {
			out := map[string]refusal{}
			for _, b := range raw {
				var e refusal
				if json.Unmarshal(b, &e) == nil && e.Type == "site_change_refused" {
					out[e.ChangeID] = e
				}
			}
			return out
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("events of %s: %v", gate, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (r *siteRig) readEventsRaw(gate string) ([][]byte, error) {
	ctx, cancel := ctxT(20 * time.Second)
	defer cancel()
	s, err := r.js.Stream(ctx, site.EventsStream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(site.EventsSubjectPrefix+gate))
	if err != nil {
		return nil, err
	}
	n := info.State.Subjects[site.EventsSubjectPrefix+gate]
	if n == 0 {
		return nil, nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{site.EventsSubjectPrefix + gate}})
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for uint64(len(out)) < n {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			return nil, fmt.Errorf("%w after %d of %d", err, len(out), n)
		}
		out = append(out, m.Data())
	}
	return out, nil
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(math.Ceil(p*float64(len(s))))-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func sameGallery(t *testing.T, name string, a, b map[string][]store.Template) {
	t.Helper()
	if len(a) != len(b) {
		t.Errorf("%s: %d people vs %d", name, len(a), len(b))
	}
	diff := 0
	for k, ta := range a {
		tb, ok := b[k]
		if !ok || !reflect.DeepEqual(canon(ta), canon(tb)) {
			diff++
			if diff <= 3 {
				t.Errorf("%s: person %q differs (present %v)", name, strings.ReplaceAll(k, "\x00", " / "), ok)
			}
		}
	}
	if diff > 0 {
		t.Errorf("%s: %d people differ", name, diff)
	}
}

// canon orders templates and normalises their time zone.
func canon(ts []store.Template) []string {
	var out []string
	for _, t := range ts {
		b, _ := json.Marshal(t.Embedding)
		out = append(out, t.Model.String()+"|"+t.Created.UTC().Format(time.RFC3339Nano)+"|"+string(b))
	}
	slices.Sort(out)
	return out
}
