package mqtt

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/facegate/facegate/internal/mqtttest"
)

func testConfig(t *testing.T) Config {
	return Config{
		Brokers:        []string{"tcp://127.0.0.1:1"},
		DeviceID:       "door1",
		OutboxDir:      t.TempDir(),
		QueueSize:      4,
		HADiscovery:    true,
		StatsInterval:  time.Hour,
		PublishTimeout: 2 * time.Second,
	}
}

// startFake runs a Client over a fakeConn until the test ends.
func startFake(t *testing.T, cfg Config, h Handlers) (*Client, *fakeConn) {
	t.Helper()
	f := newFakeConn()
	c, err := newClient(cfg, h, nil, f.factory)
	if err != nil {
		t.Fatal(err)
	}
	mqtttest.Run(t, c.Run)
	if !waitFor(2*time.Second, c.Connected) {
		t.Fatal("client did not connect")
	}
	return c, f
}

func TestConfigValidate(t *testing.T) {
	ok := func() Config {
		return Config{Brokers: []string{"ssl://broker:8883"}, DeviceID: "door-1", OutboxDir: "/tmp/x"}
	}
	for name, tc := range map[string]struct {
		mut  func(c *Config)
		want string
	}{
		"valid":          {func(c *Config) {}, ""},
		"no broker":      {func(c *Config) { c.Brokers = nil }, "FACEGATE_MQTT_BROKERS"},
		"bad scheme":     {func(c *Config) { c.Brokers = []string{"http://x"} }, "scheme"},
		"device slash":   {func(c *Config) { c.DeviceID = "a/b" }, "FACEGATE_MQTT_DEVICE_ID"},
		"device +":       {func(c *Config) { c.DeviceID = "+" }, "FACEGATE_MQTT_DEVICE_ID"},
		"prefix #":       {func(c *Config) { c.Prefix = "site/#" }, "FACEGATE_MQTT_PREFIX"},
		"cert no key":    {func(c *Config) { c.CertFile = "c.pem" }, "KEY_FILE"},
		"no outbox":      {func(c *Config) { c.OutboxDir = "" }, "OUTBOX_DIR"},
		"two passwords":  {func(c *Config) { c.Password, c.PasswordFile = "a", "b" }, "PASSWORD_FILE"},
		"tiny queue":     {func(c *Config) { c.QueueSize = -1 }, "QUEUE_SIZE"},
		"keepalive 10ms": {func(c *Config) { c.KeepAlive = 10 * time.Millisecond }, "KEEPALIVE"},
		"CA, tcp only":   {func(c *Config) { c.CAFile, c.Brokers = "ca.pem", []string{"tcp://broker:1883"} }, "no broker URL uses TLS"},
		"CA, one TLS":    {func(c *Config) { c.CAFile, c.Brokers = "ca.pem", []string{"tcp://a:1883", "ssl://b:8883"} }, ""},
	} {
		c := ok()
		tc.mut(&c)
		err := c.Validate()
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			if c.ClientID != "facegate-door-1" || c.Prefix != "facegate" {
				t.Errorf("%s: defaults not applied: %q %q", name, c.ClientID, c.Prefix)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want mention of %s", name, err, tc.want)
		}
	}
}

func TestSubscribesInOnConnectEveryTime(t *testing.T) {
	_, f := startFake(t, testConfig(t), Handlers{})
	want := []string{"facegate/door1/enroll/request", "facegate/door1/claim", "facegate/door1/feedback"}
	subs := func() []string { f.mu.Lock(); defer f.mu.Unlock(); return slices.Clone(f.subCalls) }
	if !waitFor(time.Second, func() bool { return len(subs()) == 3 }) {
		t.Fatalf("subscriptions %v", subs())
	}
	st := f.published("facegate/door1/status")
	if len(st) != 1 || st[0].payload != StatusOnline || !st[0].retained || st[0].qos != 1 {
		t.Fatalf("status publishes %+v", st)
	}
	if f.opts.WillTopic != "facegate/door1/status" || string(f.opts.WillPayload) != StatusOffline {
		t.Fatalf("last will %q %q", f.opts.WillTopic, f.opts.WillPayload)
	}
	if f.opts.ClientID != "facegate-door1" {
		t.Fatalf("client id %q", f.opts.ClientID)
	}
	ha := f.published("homeassistant/")
	if len(ha) != 6 || !ha[0].retained {
		t.Fatalf("discovery configs %d", len(ha))
	}
	f.drop()
	f.up()
	if !waitFor(time.Second, func() bool { return len(subs()) == 6 }) {
		t.Fatalf("after reconnect subscriptions %v", subs())
	}
	if got := subs()[3:]; !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Fatalf("resubscribed to %v", got)
	}
}

func waitReply(t *testing.T, f *fakeConn, id string) EnrollReply {
	t.Helper()
	topic := "facegate/door1/enroll/reply/" + id
	if !waitFor(2*time.Second, func() bool { return len(f.published(topic)) > 0 }) {
		t.Fatalf("no reply on %s", topic)
	}
	p := f.published(topic)[0]
	if p.qos != 1 || p.retained {
		t.Fatalf("reply qos %d retained %v", p.qos, p.retained)
	}
	var r EnrollReply
	if err := json.Unmarshal([]byte(p.payload), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

type replayErr struct{}

func (replayErr) Error() string   { return "nonce already seen" }
func (replayErr) ReplyCode() Code { return CodeReplay }

func TestEnrollRepliesAndAuth(t *testing.T) {
	var mu sync.Mutex
	var got []string
	h := Handlers{
		Enroll: func(_ context.Context, r *EnrollRequest) EnrollReply {
			mu.Lock()
			got = append(got, r.RequestID)
			mu.Unlock()
			if r.SubjectID == "ghost" {
				return EnrollReply{Code: CodeUnknownSubject, Message: "no such person"}
			}
			return EnrollReply{SubjectID: r.SubjectID, Templates: len(r.Images)}
		},
		Authenticate: func(_ context.Context, s Signed) error {
			switch s.AuthFields().KeyID {
			case "good":
				return nil
			case "old":
				return replayErr{}
			}
			return fmt.Errorf("unknown key id %q", s.AuthFields().KeyID)
		},
	}
	_, f := startFake(t, testConfig(t), h)
	waitFor(time.Second, func() bool { _, ok := f.deliver("facegate/door1/feedback", "{}"); return ok })
	auth := func(k string) string {
		return `,"key_id":"` + k + `","ts":1,"nonce":"nonce-0123456789","sig":"abababababababababababababababababababababababababababababababab"`
	}
	req := "facegate/door1/enroll/request"
	f.deliver(req, `{"request_id":"ok1","op":"delete","subject_id":"alice"`+auth("good")+`}`)
	f.deliver(req, `{"request_id":"un1","op":"delete","subject_id":"ghost"`+auth("good")+`}`)
	f.deliver(req, `{"request_id":"rp1","op":"delete","subject_id":"alice"`+auth("old")+`}`)
	f.deliver(req, `{"request_id":"na1","op":"delete","subject_id":"alice"`+auth("evil")+`}`)
	f.deliver(req, `{"request_id":"ns1","op":"delete","subject_id":"alice"}`)
	f.deliver(req, `{"request_id":"br1","op":"explode"}`)
	f.deliver(req, `not json at all`)
	for id, want := range map[string]struct {
		status ReplyStatus
		code   Code
	}{
		"ok1": {ReplyOK, ""}, "un1": {ReplyError, CodeUnknownSubject}, "rp1": {ReplyError, CodeReplay},
		"na1": {ReplyError, CodeUnauthorised}, "ns1": {ReplyError, CodeUnauthorised},
		"br1": {ReplyError, CodeBadRequest}, "invalid": {ReplyError, CodeBadFormat},
	} {
		r := waitReply(t, f, id)
		if r.Status != want.status || r.Code != want.code {
			t.Errorf("%s: reply %s/%s (%s), want %s/%s", id, r.Status, r.Code, r.Message, want.status, want.code)
		}
		if id != "invalid" && r.RequestID != id {
			t.Errorf("%s: reply request_id %q", id, r.RequestID)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, []string{"ok1", "un1"}) {
		t.Fatalf("handler saw %v; unauthenticated requests must not reach it", got)
	}
}

func TestHandlersNeverBlockAndBusyWhenFull(t *testing.T) {
	release := make(chan struct{})
	h := Handlers{
		Enroll: func(ctx context.Context, _ *EnrollRequest) EnrollReply {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return EnrollReply{}
		},
		Claim: func(ctx context.Context, _ *Claim) {
			select {
			case <-release:
			case <-ctx.Done():
			}
		},
	}
	cfg := testConfig(t)
	cfg.InsecureNoAuth = true
	c, f := startFake(t, cfg, h)
	t.Cleanup(func() { close(release) }) // runs before the client is stopped
	waitFor(time.Second, func() bool { _, ok := f.deliver("facegate/door1/claim", "{}"); return ok })
	var slowest time.Duration
	const n = 20
	for i := 0; i < n; i++ {
		d, _ := f.deliver("facegate/door1/enroll/request", fmt.Sprintf(`{"request_id":"q%d","op":"list"}`, i))
		slowest = max(slowest, d)
		d, _ = f.deliver("facegate/door1/claim", fmt.Sprintf(`{"request_id":"c%d","subject_id":"a"}`, i))
		slowest = max(slowest, d)
	}
	if slowest > 50*time.Millisecond {
		t.Fatalf("a message handler blocked for %v", slowest)
	}
	// One enroll in the handler + QueueSize queued; the rest answered busy.
	busy := 0
	waitFor(2*time.Second, func() bool {
		busy = 0
		for _, p := range f.published("facegate/door1/enroll/reply/") {
			if strings.Contains(p.payload, `"code":"busy"`) {
				busy++
			}
		}
		return busy >= n-1-cfg.QueueSize
	})
	if busy < n-1-cfg.QueueSize || busy > n-1 {
		t.Fatalf("%d busy replies, want about %d", busy, n-1-cfg.QueueSize)
	}
	if d := c.Counters().RequestsDropped; d < uint64(busy) {
		t.Fatalf("dropped counter %d < busy %d", d, busy)
	}
}

func TestEventsQueuedWhileDownDeliveredInOrder(t *testing.T) {
	cfg := testConfig(t)
	c, f := startFake(t, cfg, Handlers{})
	f.drop()
	for i := 0; i < 10; i++ {
		e, err := c.PublishEvent(Event{ID: fmt.Sprintf("e%d", i), Decision: DecisionGranted, Mode: ModeIdentify, Image: "secret"})
		if err != nil {
			t.Fatal(err)
		}
		if e.Seq != uint64(i+1) || e.DeviceID != "door1" {
			t.Fatalf("event %d: seq %d device %q", i, e.Seq, e.DeviceID)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(f.published("facegate/door1/events")); n != 0 {
		t.Fatalf("%d events published while disconnected", n)
	}
	if c.Counters().OutboxPending != 10 {
		t.Fatalf("pending %d", c.Counters().OutboxPending)
	}
	f.up()
	if !waitFor(2*time.Second, func() bool { return len(f.published("facegate/door1/events")) == 10 }) {
		t.Fatalf("delivered %d of 10", len(f.published("facegate/door1/events")))
	}
	for i, p := range f.published("facegate/door1/events") {
		var e Event
		json.Unmarshal([]byte(p.payload), &e)
		if e.Seq != uint64(i+1) || p.qos != 1 || p.retained {
			t.Fatalf("event %d: seq %d qos %d retained %v", i, e.Seq, p.qos, p.retained)
		}
		if e.Image != "" {
			t.Fatal("image published although EventImages is off")
		}
	}
	if !waitFor(time.Second, func() bool { return c.Counters().OutboxPending == 0 }) {
		t.Fatalf("pending after delivery %d", c.Counters().OutboxPending)
	}
}

func TestStatsPublishedRetainedOnConnect(t *testing.T) {
	acc := NewAccumulator(time.Now(), AccumulatorOptions{})
	acc.Observe(Event{ID: "x", Decision: DecisionGranted, Score: 0.9, LatencyMS: 12})
	_, f := startFake(t, testConfig(t), Handlers{Stats: func() Stats { return acc.Snapshot(time.Now()) }})
	if !waitFor(2*time.Second, func() bool { return len(f.published("facegate/door1/stats")) > 0 }) {
		t.Fatal("no stats on connect")
	}
	p := f.published("facegate/door1/stats")[0]
	var s Stats
	json.Unmarshal([]byte(p.payload), &s)
	if !p.retained || s.Attempts != 1 || s.DeviceID != "door1" {
		t.Fatalf("stats %+v retained %v", s, p.retained)
	}
	if err := validate(t, schemas(t)["stats.json"], []byte(p.payload)); err != nil {
		t.Fatal(err)
	}
}
