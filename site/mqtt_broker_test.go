package site

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/facegate/facegate/daemon/mqtt"
	"github.com/facegate/facegate/internal/mqtttest"
)

// Issue 18: nats-server as the MQTT broker. These tests run the daemon's
// MQTT client (daemon/mqtt.Client, the real paho connection) against the
// MQTT listener of an embedded nats-server, through the scenarios of
// daemon/mqtt's integration tests: events in order at QoS 1, enroll
// request and reply (including a request near the 8 MiB limit), the
// retained status with its last will, and a broker restart mid-stream with
// nothing lost. They also measure the two settings that differ from
// Mosquitto and mochi-mqtt: MaxPayload and AckWait. Everything is pure Go
// and in-process: nothing to skip. Results: docs/site.md, "nats-server as
// the embedded MQTT broker".

// mqttAckWait is the AckWait the tests run with: short enough that a
// message delivered but not acknowledged before a restart comes back
// within the test's patience.
const mqttAckWait = 2 * time.Second

// natsMQTT is an embedded nats-server with its MQTT listener on fixed
// ports and a store directory, so that it can be stopped and started again
// with its sessions and retained messages.
type natsMQTT struct {
	t        *testing.T
	cfg      ServerConfig
	mqttAddr string
	s        *Server
}

func startNatsMQTT(t *testing.T, edit func(*ServerConfig)) *natsMQTT {
	t.Helper()
	ports := freePorts(t, 2)
	cfg := ServerConfig{
		Name: "mqtt", Port: ports[0], MQTTPort: ports[1], StoreDir: t.TempDir(),
		MaxPayload:  int32(mqtt.MaxPacketFor(mqtt.DefaultLimits)),
		MQTTAckWait: mqttAckWait,
	}
	if os.Getenv("FACEGATE_TEST_VERBOSE") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if edit != nil {
		edit(&cfg)
	}
	b := &natsMQTT{t: t, cfg: cfg, mqttAddr: "127.0.0.1:" + strconv.Itoa(cfg.MQTTPort)}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func (b *natsMQTT) url() string { return "tcp://" + b.mqttAddr }

func (b *natsMQTT) start() {
	b.t.Helper()
	t0 := time.Now()
	s, err := StartServer(b.cfg)
	if err != nil {
		b.t.Fatal(err)
	}
	b.s = s
	// ReadyForConnections covers the MQTT listener too; check it anyway.
	c, err := net.DialTimeout("tcp", b.mqttAddr, time.Second)
	if err != nil {
		b.t.Fatalf("MQTT listener: %v", err)
	}
	c.Close()
	b.t.Logf("nats-server with MQTT on %s ready in %s", b.mqttAddr, time.Since(t0).Round(time.Millisecond))
}

func (b *natsMQTT) stop() {
	if b.s != nil {
		b.s.Shutdown()
		b.s.WaitForShutdown()
		b.s = nil
	}
}

// mqttMsg is one message an observer received.
type mqttMsg = mqtttest.Msg

// observer is mqtttest's observer: a persistent session at QoS 1 that
// records what it receives and subscribes again on every connect.
type observer struct{ *mqtttest.Observer }

func newObserver(t *testing.T, broker, id string, topics ...string) *observer {
	t.Helper()
	o := mqtttest.NewObserver(t, broker, id, topics...)
	// The on-connect handler runs after Connect returns: wait for its
	// subscriptions, or what is published next may find no subscriber.
	if err := o.WaitSubscribed(5 * time.Second); err != nil {
		t.Fatalf("observer %s: %v", id, err)
	}
	return &observer{o}
}

func (o *observer) on(topic string) []mqttMsg { return o.On(topic) }

func (o *observer) connLost() int { return o.ConnLost() }

// publish sends a QoS 1 message and waits for its PUBACK.
func (o *observer) publish(topic, payload string) error { return o.Publish(topic, payload) }

// cutProxy forwards TCP connections to the broker and can cut them all
// uncleanly: the broker sees no DISCONNECT packet and sends the last will.
type cutProxy struct {
	ln     net.Listener
	target string
	conns  mqtttest.Conns
	mu     sync.Mutex
	held   bool // refuse new connections (close them at once)
}

func (p *cutProxy) hold(on bool) {
	p.mu.Lock()
	p.held = on
	p.mu.Unlock()
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.cut() })
	return p
}

func (p *cutProxy) url() string { return "tcp://" + p.ln.Addr().String() }

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		held := p.held
		p.mu.Unlock()
		if held {
			c.Close()
			continue
		}
		up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.conns.Add(c, up)
		go func() { io.Copy(up, c); up.Close() }()
		go func() { io.Copy(c, up); c.Close() }()
	}
}

func (p *cutProxy) cut() { p.conns.Cut() }

// runGate starts the daemon's MQTT client (paho underneath) as a gate does.
func runGate(t *testing.T, broker, device string, h mqtt.Handlers) *mqtt.Client {
	t.Helper()
	cfg := mqtt.Config{
		Brokers: []string{broker}, DeviceID: device, OutboxDir: t.TempDir(),
		MaxReconnectInterval: time.Second, PublishTimeout: 5 * time.Second, KeepAlive: 5 * time.Second,
		StatsInterval: time.Hour, InsecureNoAuth: true, Version: "test",
	}
	c, err := mqtt.New(cfg, h, mqtttest.VerboseLogger())
	if err != nil {
		t.Fatal(err)
	}
	mqtttest.Run(t, c.Run)
	waitFor(t, 10*time.Second, "the gate's MQTT client to connect", c.Connected)
	return c
}

func enrollHandler(_ context.Context, r *mqtt.EnrollRequest) mqtt.EnrollReply {
	switch {
	case r.Op == mqtt.OpList:
		return mqtt.EnrollReply{People: []mqtt.Person{{ID: "alice", Templates: 2}}}
	case r.SubjectID == "ghost":
		return mqtt.EnrollReply{Code: mqtt.CodeUnknownSubject}
	}
	return mqtt.EnrollReply{SubjectID: r.SubjectID}
}

func pngB64(t *testing.T) string {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, 8, 8))); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

type requestCase struct {
	id, payload string
	code        mqtt.Code // empty: ok
}

// requestCases are daemon/mqtt's checkRequestReplies cases, plus one
// request of nearly 8 MiB (the gate's own limit), which must reach the
// gate and be answered rather than drop the connection.
func requestCases(t *testing.T) []requestCase {
	p := pngB64(t)
	big := base64.StdEncoding.EncodeToString(make([]byte, 1<<20+10))
	near := `{"request_id":"e-8mib","op":"add","subject_id":"a","images":["` + strings.Repeat("A", mqtt.DefaultLimits.MaxPayload-200) + `"]}`
	return []requestCase{
		{"ok-list", `{"request_id":"ok-list","op":"list"}`, ""},
		{"ok-add", `{"request_id":"ok-add","op":"add","subject_id":"bob","images":["` + p + `"]}`, ""},
		{"e-subject", `{"request_id":"e-subject","op":"delete","subject_id":"ghost"}`, mqtt.CodeUnknownSubject},
		{"e-op", `{"request_id":"e-op","op":"format_disk"}`, mqtt.CodeBadRequest},
		{"e-field", `{"request_id":"e-field","op":"list","x":1}`, mqtt.CodeBadRequest},
		{"e-gif", `{"request_id":"e-gif","op":"add","subject_id":"a","images":["R0lGODlhAQABAAAAACw="]}`, mqtt.CodeBadFormat},
		{"e-big", `{"request_id":"e-big","op":"add","subject_id":"a","images":["` + big + `"]}`, mqtt.CodeTooLarge},
		{"e-8mib", near, mqtt.CodeTooLarge},
		{"invalid", `{{{`, mqtt.CodeBadFormat},
	}
}

func checkReplies(t *testing.T, obs *observer, topics mqtt.Topics, cases []requestCase) {
	t.Helper()
	for _, c := range cases {
		if err := obs.publish(topics.EnrollRequest, c.payload); err != nil {
			t.Fatalf("%s (%d bytes): %v", c.id, len(c.payload), err)
		}
	}
	for _, c := range cases {
		topic := topics.EnrollReply(c.id)
		deadline := time.Now().Add(10 * time.Second)
		for len(obs.on(topic)) == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if len(obs.on(topic)) == 0 {
			t.Errorf("%s: no reply on %s", c.id, topic)
			continue
		}
		var r mqtt.EnrollReply
		if err := json.Unmarshal([]byte(obs.on(topic)[0].Payload), &r); err != nil {
			t.Fatal(err)
		}
		want := mqtt.ReplyOK
		if c.code != "" {
			want = mqtt.ReplyError
		}
		if r.Status != want || r.Code != c.code {
			t.Errorf("%s: reply %s/%s %q, want %s/%s", c.id, r.Status, r.Code, r.Message, want, c.code)
		}
	}
	if n := obs.connLost(); n > 0 {
		t.Errorf("the requester's connection dropped %d times", n)
	}
}

// TestNatsMQTTGate: a gate's MQTT client against nats-server's listener,
// the scenarios of daemon/mqtt's TestEmbeddedBrokerEndToEnd and
// TestMosquittoStatusWillAndRequests.
func TestNatsMQTTGate(t *testing.T) {
	b := startNatsMQTT(t, nil)
	topics := mqtt.NewTopics("facegate", "door1")
	obs := newObserver(t, b.url(), "obs", topics.Base+"/#")
	proxy := newCutProxy(t, b.mqttAddr)
	c := runGate(t, proxy.url(), "door1", mqtt.Handlers{Enroll: enrollHandler})

	// Events, in order, at QoS 1.
	t.Run("events", func(t *testing.T) {
		for i := range 50 {
			if _, err := c.PublishEvent(mqtt.Event{ID: fmt.Sprintf("ev%d", i), Decision: mqtt.DecisionDenied, Mode: mqtt.ModeVerify, Model: mqtt.ModelRef{ID: "m", Version: "1"}}); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 10*time.Second, "50 events", func() bool { return len(obs.on(topics.Events)) >= 50 })
		for i, m := range obs.on(topics.Events) {
			var e mqtt.Event
			if err := json.Unmarshal([]byte(m.Payload), &e); err != nil {
				t.Fatal(err)
			}
			if e.Seq != uint64(i+1) {
				t.Fatalf("event %d has seq %d", i, e.Seq)
			}
		}
	})

	t.Run("requests", func(t *testing.T) { checkReplies(t, obs, topics, requestCases(t)) })

	// Retained online; offline through the last will when the connection
	// is cut uncleanly; online again after the client reconnects.
	t.Run("status and last will", func(t *testing.T) {
		late := newObserver(t, b.url(), "late", topics.Status)
		waitFor(t, 5*time.Second, "the retained status", func() bool { return len(late.on(topics.Status)) > 0 })
		if m := late.on(topics.Status)[0]; m.Payload != mqtt.StatusOnline || !m.Retained {
			t.Fatalf("retained status %+v, want %q retained", m, mqtt.StatusOnline)
		}
		// The gate may not come back before the broker has seen its
		// connection close: nats-server drops the old connection's will
		// when the same client id takes the session over (mqtt.go,
		// "Replacing old client"), so a reconnect within the broker's
		// notice would publish no offline.
		cutAt := time.Now()
		proxy.hold(true)
		proxy.cut()
		seq := func() []string { return late.Payloads(topics.Status) }
		waitFor(t, 10*time.Second, "the last will", func() bool { s := seq(); return s[len(s)-1] == mqtt.StatusOffline })
		proxy.hold(false)
		deadline := time.Now().Add(15 * time.Second)
		for {
			s := seq()
			if len(s) >= 3 && s[len(s)-2] == mqtt.StatusOffline && s[len(s)-1] == mqtt.StatusOnline {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("status after an unclean cut: %v, want online, offline (last will), online", s)
			}
			time.Sleep(10 * time.Millisecond)
		}
		m := late.on(topics.Status)
		t.Logf("last will %s after the cut, online again %s after it",
			m[len(m)-2].At.Sub(cutAt).Round(time.Millisecond), m[len(m)-1].At.Sub(cutAt).Round(time.Millisecond))
	})
}

// TestNatsMQTTRestartMidStream is daemon/mqtt's TestMosquittoRestartMidStream
// with nats-server as the broker: stopped while events are published and
// started again on the same store, every event arrives, first deliveries
// in order, duplicates only as QoS 1 allows.
func TestNatsMQTTRestartMidStream(t *testing.T) {
	b := startNatsMQTT(t, nil)
	topics := mqtt.NewTopics("facegate", "door9")
	obs := newObserver(t, b.url(), "obs-restart", topics.Events)
	c := runGate(t, b.url(), "door9", mqtt.Handlers{})
	const perPhase = 100
	publish := func(from int) {
		for i := from; i < from+perPhase; i++ {
			if _, err := c.PublishEvent(mqtt.Event{ID: fmt.Sprintf("ev%d", i), Decision: mqtt.DecisionGranted, Mode: mqtt.ModeIdentify, Model: mqtt.ModelRef{ID: "m", Version: "1"}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(0)
	b.stop() // mid-stream: part of phase 0 is still queued or in flight
	publish(perPhase)
	time.Sleep(500 * time.Millisecond)
	pendingWhileDown := c.Counters().OutboxPending
	restartAt := time.Now()
	b.start()
	publish(2 * perPhase)
	const total = 3 * perPhase
	var got mqtttest.Deliveries
	collect := func() {
		var seqs []uint64
		for _, msg := range obs.on(topics.Events) {
			var e mqtt.Event
			if err := json.Unmarshal([]byte(msg.Payload), &e); err != nil {
				t.Fatal(err)
			}
			seqs = append(seqs, e.Seq)
		}
		got = mqtttest.Tally(seqs)
	}
	deadline := time.Now().Add(30 * time.Second)
	for collect(); len(got.Seen) < total && time.Now().Before(deadline); collect() {
		time.Sleep(20 * time.Millisecond)
	}
	allAt := time.Since(restartAt)
	t.Logf("restart mid-stream: %d events, %d pending in the outbox while the broker was down, %d received, %d QoS 1 duplicates, %d republished by the client, all received %s after the restart",
		total, pendingWhileDown, len(obs.on(topics.Events)), got.Dups, c.Counters().Republished, allAt.Round(time.Millisecond))
	if len(got.Seen) < total {
		lost := got.Lost(total)
		t.Fatalf("lost %d events: %v", len(lost), lost)
	}
	// First deliveries across the restart are usually in order, but not
	// always: one CI run on 2026-12-05 saw seq 14 first at position 12.
	// The order is a figure of the broker evaluation (docs/site.md), not a
	// property facegate relies on (events carry seq; consumers order by
	// it), so it is logged, and loss and duplicates stay hard failures.
	outOfOrder := 0
	for i, s := range got.Firsts {
		if s != uint64(i+1) {
			if outOfOrder == 0 {
				t.Logf("first deliveries out of order from position %d: seq %d", i, s)
			}
			outOfOrder++
		}
	}
	t.Logf("first deliveries at their position: %d of %d", len(got.Firsts)-outOfOrder, len(got.Firsts))
	got.CheckRestart(t, total, pendingWhileDown, c.Counters().Republished)
	waitFor(t, 5*time.Second, "an empty outbox", func() bool { return c.Counters().OutboxPending == 0 })
}

// TestNatsMQTTMaxPayload: nats-server's MaxPayload applies to MQTT. At the
// server's default (1 MiB) an enroll request of 1.4 MiB is not answered:
// the broker drops the requester's connection, and the gate never sees the
// request. At mqtt.MaxPacketFor (the setting facegate would use) it is
// answered too_large by the gate. A publish announcing 200 MB closes the
// connection from its fixed header, without the broker reading it.
func TestNatsMQTTMaxPayload(t *testing.T) {
	t.Run("server default drops the connection", func(t *testing.T) {
		b := startNatsMQTT(t, func(c *ServerConfig) { c.MaxPayload = 0 })
		topics := mqtt.NewTopics("facegate", "door2")
		obs := newObserver(t, b.url(), "obs-default", topics.Base+"/#")
		runGate(t, b.url(), "door2", mqtt.Handlers{Enroll: enrollHandler})
		var big requestCase
		for _, c := range requestCases(t) {
			if c.id == "e-big" {
				big = c
			}
		}
		err := obs.publish(topics.EnrollRequest, big.payload)
		waitFor(t, 5*time.Second, "the broker to drop the requester", func() bool { return obs.connLost() > 0 })
		time.Sleep(2 * time.Second) // a reply, if any, would come within this
		if n := len(obs.on(topics.EnrollReply(big.id))); n != 0 {
			t.Fatalf("a %d-byte request was answered (%d replies) at the default MaxPayload: the finding in docs/site.md is out of date", len(big.payload), n)
		}
		t.Logf("a %d-byte publish at the default MaxPayload: paho's publish returned %v, the requester's connection dropped %d time(s), no reply", len(big.payload), err, obs.connLost())
		// paho keeps the unacknowledged publish in its session and sends it
		// again on every reconnect: the requester is dropped over and over.
		// Other clients are served.
		other := newObserver(t, b.url(), "obs-other", topics.Base+"/#")
		if err := other.publish(topics.EnrollRequest, `{"request_id":"small","op":"list"}`); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "the reply to a small request", func() bool { return len(other.on(topics.EnrollReply("small"))) > 0 })
	})

	t.Run("200 MB announced", func(t *testing.T) {
		b := startNatsMQTT(t, nil)
		ok := mqtttest.RawConnect(t, b.mqttAddr, '1')
		defer ok.Close()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		big := mqtttest.RawConnect(t, b.mqttAddr, '2')
		defer big.Close()
		mqtttest.RefusesAnnounced(t, big, 200<<20, "a 200 MB publish")
		runtime.ReadMemStats(&after)
		grew := after.TotalAlloc - before.TotalAlloc
		t.Logf("200 MB publish announced: connection closed, %d kB allocated in the process meanwhile", grew>>10)
		if grew > 64<<20 {
			t.Fatalf("broker allocated %d MB for a refused packet", grew>>20)
		}
		// The well-behaved connection is still served.
		mqtttest.Ping(t, ok)
	})
}

// redelivery measures when a broker sends again a QoS 1 message that a
// subscriber received and did not acknowledge: while it stays connected,
// and after it reconnects (persistent session).
// A duration of -1 means not within patience.
func redelivery(t *testing.T, broker, name string, patience time.Duration) (connected, afterReconnect time.Duration) {
	t.Helper()
	sub := func(id string, got chan<- time.Time) paho.Client {
		// The default handler also takes a redelivery that arrives on the
		// resumed session before the subscription is made again.
		recv := func(_ paho.Client, m paho.Message) { got <- time.Now() }
		opts := paho.NewClientOptions().AddBroker(broker).SetClientID(id).SetCleanSession(false).
			SetAutoAckDisabled(true).SetDefaultPublishHandler(recv)
		c := paho.NewClient(opts)
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("%s: connect %s: %v", name, id, tok.Error())
		}
		if tok := c.Subscribe("redeliver/"+id, 1, recv); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("%s: subscribe %s: %v", name, id, tok.Error())
		}
		return c
	}
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID("pub-" + name))
	if tok := pub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("%s: connect publisher: %v", name, tok.Error())
	}
	defer pub.Disconnect(100)
	send := func(id string) {
		if tok := pub.Publish("redeliver/"+id, 1, false, "x"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("%s: publish: %v", name, tok.Error())
		}
	}
	// Connected, never acknowledging.
	got := make(chan time.Time, 8)
	c := sub("stay-"+name, got)
	send("stay-" + name)
	first := receive(t, got, name)
	select {
	case again := <-got:
		connected = again.Sub(first)
	case <-time.After(patience):
		connected = -1
	}
	c.Disconnect(100)

	// Received, not acknowledged, the subscriber goes away and comes back.
	got = make(chan time.Time, 8)
	c = sub("back-"+name, got)
	send("back-" + name)
	receive(t, got, name)
	c.Disconnect(100)
	back := time.Now()
	c = sub("back-"+name, got)
	defer c.Disconnect(100)
	select {
	case again := <-got:
		afterReconnect = again.Sub(back)
	case <-time.After(patience):
		afterReconnect = -1
	}
	return connected, afterReconnect
}

func receive(t *testing.T, got <-chan time.Time, name string) time.Time {
	t.Helper()
	select {
	case at := <-got:
		return at
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: the first delivery did not come within 5 s", name)
		return time.Time{}
	}
}

// TestNatsMQTTAckWait: nats-server redelivers an unacknowledged QoS 1
// message after MQTT.AckWait, also to a subscriber that reconnected
// meanwhile: not at the reconnect, as Mosquitto and mochi-mqtt do.
// mochi-mqtt (the embedded broker today) is measured beside it.
func TestNatsMQTTAckWait(t *testing.T) {
	const ackWait = time.Second
	const patience = ackWait + 3*time.Second
	show := func(d time.Duration) string {
		if d < 0 {
			return "never (within " + patience.String() + ")"
		}
		return d.Round(time.Millisecond).String()
	}
	b := startNatsMQTT(t, func(c *ServerConfig) { c.MQTTAckWait = ackWait })
	conn, back := redelivery(t, b.url(), "nats", patience)
	t.Logf("nats-server, AckWait %s: redelivered to a connected subscriber after %s, to one that reconnected after %s", ackWait, show(conn), show(back))
	if conn < ackWait-200*time.Millisecond || conn > ackWait+2*time.Second {
		t.Errorf("nats-server redelivered to a connected subscriber after %s, want about AckWait (%s)", show(conn), ackWait)
	}
	if back < ackWait/2 {
		t.Errorf("nats-server redelivered to a reconnected subscriber after %s: at the reconnect, not after AckWait (%s); docs/site.md is out of date", show(back), ackWait)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, err := mqtt.StartEmbedded(ctx, "127.0.0.1:0", mqtt.EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	mconn, mback := redelivery(t, m.URL(), "mochi", patience)
	t.Logf("mochi-mqtt: redelivered to a connected subscriber after %s, to one that reconnected after %s", show(mconn), show(mback))
	if mback < 0 || mback > time.Second {
		t.Errorf("mochi-mqtt redelivered to a reconnected subscriber after %s, want at the reconnect", show(mback))
	}
}
