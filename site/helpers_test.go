package site

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/facegate/facegate/daemon/auth"
	"github.com/facegate/facegate/enroll/store"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// fixture holds a site's keys: the operator's Ed25519 private key (in the
// operator's tool) and the gates' enrollment key ring (as daemon/auth
// loads it: the operator's public key, and a legacy HMAC key that every
// gate holds), the site's gallery key and each gate's Ed25519 key.
type fixture struct {
	operator auth.Key
	hmacKey  auth.Key // held by every gate, so by a compromised one
	ring     *auth.KeyRing
	siteKey  store.Key
	gateKeys map[string]ed25519.PrivateKey
	gates    GateKeys
	verify   Verifier // when set, what verifier returns
}

func newFixture(t testing.TB, gates ...string) *fixture {
	t.Helper()
	op, err := auth.NewEd25519PrivateKey("ops-1", bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := op.Public()
	hk, err := auth.NewKey("legacy", bytes.Repeat([]byte{8}, 32))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := auth.NewKeyRing(pub, hk)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := store.NewKey("site-1", bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{operator: op, hmacKey: hk, ring: ring, siteKey: sk, gateKeys: map[string]ed25519.PrivateKey{}, gates: GateKeys{}}
	for i, g := range gates {
		priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(i + 1)}, 32))
		f.gateKeys[g] = priv
		f.gates[g] = priv.Public().(ed25519.PublicKey)
	}
	return f
}

// verifier is what the daemon plugs in (daemon.SiteVerifier with
// FACEGATE_SITE_OPERATOR_KEYS=ed25519): daemon/auth's signature check
// over the canonical form, without its time window and nonce cache, with
// Ed25519 operator keys only.
func (f *fixture) verifier() Verifier {
	if f.verify != nil {
		return f.verify
	}
	return VerifierFunc(func(c *Change) error {
		return auth.CheckSignature(f.ring,
			auth.Fields{KeyID: c.Request.KeyID, Timestamp: c.Request.TS, Nonce: c.Request.Nonce, Signature: c.Request.Sig},
			auth.Request{Operation: c.Request.Operation, RequestID: c.Request.RequestID, Body: c.Request.Body}, true)
	})
}

var requestOpOf = map[Op]string{OpEnrol: "add", OpAdd: "add_images", OpRemove: "delete"}

// change builds a change as the accepting gate would: the operator signs
// the request (sent to gate), the gate seals the templates.
func (f *fixture) change(t testing.TB, gate string, op Op, subject, name string, seed int, at time.Time) *Change {
	t.Helper()
	return f.changeSigned(t, f.operator, gate, op, subject, name, seed, at)
}

// changeSigned is change with the request signed by key.
func (f *fixture) changeSigned(t testing.TB, key auth.Key, gate string, op Op, subject, name string, seed int, at time.Time) *Change {
	t.Helper()
	reqOp := requestOpOf[op]
	rid := "r-" + subject + "-" + strconv.Itoa(seed) + "-" + strconv.FormatInt(at.UnixNano(), 36)
	if op != OpEnrol {
		name = ""
	}
	body, err := auth.Body(
		auth.BodyField{Name: "device_id", Value: gate},
		auth.BodyField{Name: "request_id", Value: rid},
		auth.BodyField{Name: "op", Value: reqOp},
		auth.BodyField{Name: "subject_id", Value: subject},
		auth.BodyField{Name: "name", Value: name},
		auth.BodyField{Name: "frames", Value: "0"},
		auth.BodyField{Name: "images", Value: ""},
	)
	if err != nil {
		t.Fatal(err)
	}
	r := auth.Request{Operation: "enroll/" + reqOp, RequestID: rid, Body: body}
	fields, err := auth.Sign(key, r, at)
	if err != nil {
		t.Fatal(err)
	}
	c := &Change{
		ID: ChangeID(fields.KeyID, fields.Nonce), Op: op, SubjectID: subject, Name: name, Origin: gate, Created: at.UTC(),
		Request: Request{KeyID: fields.KeyID, TS: fields.Timestamp, Nonce: fields.Nonce, Sig: fields.Signature, Operation: r.Operation, RequestID: rid, Body: body},
	}
	if op != OpRemove {
		emb := make([]float32, 512)
		for i := range emb {
			emb[i] = float32((seed*7919+i*31)%1000)/1000 - 0.5
		}
		c.Templates, err = SealTemplates(f.siteKey, c.ID, []store.Template{{Model: store.Model{Name: "facenet", Version: "1"}, Embedding: emb, Created: at.UTC()}})
		if err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// freePorts reserves n loopback ports (closed again before use: a small
// race that nats-server's own tests accept too).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

type cluster struct {
	t     testing.TB
	cfgs  []ServerConfig
	nodes []*Server
}

// startCluster starts n servers in this process on loopback, in one
// JetStream cluster when n > 1, and waits for a meta leader.
func startCluster(t testing.TB, n int) *cluster {
	t.Helper()
	ports := freePorts(t, 2*n)
	var routes []string
	for i := range n {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[n+i]))
	}
	c := &cluster{t: t}
	for i := range n {
		cfg := ServerConfig{Name: fmt.Sprintf("n%d", i+1), Port: ports[i], StoreDir: t.TempDir()}
		if n > 1 {
			cfg.ClusterName, cfg.ClusterPort, cfg.Routes = "site", ports[n+i], routes
		}
		c.cfgs = append(c.cfgs, cfg)
		c.nodes = append(c.nodes, nil)
	}
	for i := range n {
		c.start(i)
	}
	t.Cleanup(func() {
		for _, s := range c.nodes {
			if s != nil {
				s.Shutdown()
				s.WaitForShutdown()
			}
		}
	})
	c.waitJS()
	return c
}

func (c *cluster) start(i int) {
	c.t.Helper()
	s, err := StartServer(c.cfgs[i])
	if err != nil {
		c.t.Fatal(err)
	}
	c.nodes[i] = s
}

func (c *cluster) stop(i int) {
	c.nodes[i].Shutdown()
	c.nodes[i].WaitForShutdown()
	c.nodes[i] = nil
}

func (c *cluster) url(i int) string { return fmt.Sprintf("nats://127.0.0.1:%d", c.cfgs[i].Port) }

func (c *cluster) urls() []string {
	var u []string
	for i := range c.cfgs {
		u = append(u, c.url(i))
	}
	return u
}

// waitJS waits until JetStream answers (a meta leader is elected).
func (c *cluster) waitJS() {
	c.t.Helper()
	nc, js := connect(c.t, c.urls()...)
	defer nc.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("JetStream not ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leader returns the index of the node leading stream.
func (c *cluster) leader(stream string) int {
	c.t.Helper()
	for i, s := range c.nodes {
		if s != nil && s.JetStreamIsStreamLeader("$G", stream) {
			return i
		}
	}
	c.t.Fatalf("no leader for %s", stream)
	return -1
}

func connect(t testing.TB, urls ...string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := Connect(ClientConfig{URLs: urls, Name: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// waitFor polls cond every 5 ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
