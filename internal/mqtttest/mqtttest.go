package mqtttest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago:
// for a broker the test starts on a port it must know beforehand.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Varint is MQTT's variable byte integer (a packet's remaining length).
func Varint(n int) []byte {
	var b []byte
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

// RawConnect opens an MQTT 3.1.1 session by hand (clean session, client
// id "ra"+id), so a test can send a packet header no well-behaved client
// library would. The CONNACK must accept it; the connection has no read
// deadline on return.
func RawConnect(t testing.TB, addr string, id byte) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	connect := []byte{0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 3, 'r', 'a', id}
	if _, err := c.Write(connect); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadFull(c, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("connack %x: %v", ack, err)
	}
	c.SetReadDeadline(time.Time{})
	return c
}

// RefusesAnnounced writes on c the fixed header of a publish (topic "t")
// announcing size bytes and nothing more, and fails the test unless the
// broker closes the connection within 3 s, without answering or waiting
// for the bytes; what names the packet in the failures ("a 200 MB
// publish").
func RefusesAnnounced(t testing.TB, c net.Conn, size int, what string) {
	t.Helper()
	hdr := append([]byte{0x30}, Varint(size)...)
	hdr = append(hdr, 0, 1, 't')
	if _, err := c.Write(hdr); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("broker answered %s instead of closing the connection", what)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("broker kept the connection of %s open (reading it?)", what)
	}
}

// Ping sends PINGREQ on c and fails the test unless PINGRESP comes back
// within a second: the connection is still served.
func Ping(t testing.TB, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte{0xC0, 0}); err != nil {
		t.Fatal(err)
	}
	resp := make([]byte, 2)
	if _, err := io.ReadFull(c, resp); err != nil || resp[0] != 0xD0 {
		t.Fatalf("pingresp %x: %v", resp, err)
	}
}

// Conns holds network connections so that a test can cut them all at once,
// uncleanly: the broker sees no DISCONNECT packet and sends the last will.
type Conns struct {
	mu    sync.Mutex
	conns []net.Conn
}

// Add keeps conns for the next Cut.
func (c *Conns) Add(conns ...net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conns = append(c.conns, conns...)
}

// Cut closes every connection added since the last Cut.
func (c *Conns) Cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
}

// VerboseLogger is a debug logger on stderr when FACEGATE_TEST_VERBOSE is
// set, else nil (the client's default).
func VerboseLogger() *slog.Logger {
	if os.Getenv("FACEGATE_TEST_VERBOSE") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Run runs run (a client's Run loop) until the test ends; the test fails
// if it returns an error then.
func Run(t testing.TB, run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// Msg is one message an observer received.
type Msg struct {
	Topic    string
	QoS      byte
	Retained bool
	Dup      bool
	Payload  string
	At       time.Time
}

// Observer is a plain paho client with a persistent session at QoS 1 that
// records what it receives and subscribes again on every connect.
type Observer struct {
	c          paho.Client
	subscribed chan struct{}
	mu         sync.Mutex
	msgs       []Msg
	lost       int
}

// NewObserver connects an observer to broker as id, subscribing to
// topics; it disconnects when the test ends. The subscriptions are made
// by the on-connect handler, after NewObserver returns: WaitSubscribed
// waits for them.
func NewObserver(t testing.TB, broker, id string, topics ...string) *Observer {
	t.Helper()
	o := &Observer{subscribed: make(chan struct{})}
	opts := paho.NewClientOptions().AddBroker(broker).SetClientID(id).SetCleanSession(false).
		SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(200 * time.Millisecond).
		SetMaxReconnectInterval(500 * time.Millisecond).SetOrderMatters(true)
	opts.SetConnectionLostHandler(func(paho.Client, error) { o.mu.Lock(); o.lost++; o.mu.Unlock() })
	var once sync.Once
	opts.SetOnConnectHandler(func(c paho.Client) {
		for _, tp := range topics {
			c.Subscribe(tp, 1, func(_ paho.Client, m paho.Message) {
				o.mu.Lock()
				o.msgs = append(o.msgs, Msg{m.Topic(), m.Qos(), m.Retained(), m.Duplicate(), string(m.Payload()), time.Now()})
				o.mu.Unlock()
			}).Wait()
		}
		once.Do(func() { close(o.subscribed) })
	})
	o.c = paho.NewClient(opts)
	if tok := o.c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("observer %s connect: %v", id, tok.Error())
	}
	t.Cleanup(func() { o.c.Disconnect(100) })
	return o
}

// WaitSubscribed waits up to d for the first connect's subscriptions.
func (o *Observer) WaitSubscribed(d time.Duration) error {
	select {
	case <-o.subscribed:
		return nil
	case <-time.After(d):
		return fmt.Errorf("not subscribed after %s", d)
	}
}

// On returns the messages received on topic, in order; a topic ending in
// "#" matches every topic under its prefix.
func (o *Observer) On(topic string) []Msg {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []Msg
	for _, m := range o.msgs {
		if m.Topic == topic || strings.HasSuffix(topic, "#") && strings.HasPrefix(m.Topic, strings.TrimSuffix(topic, "#")) {
			out = append(out, m)
		}
	}
	return out
}

// Payloads returns the payloads received on topic, in order (On's
// matching).
func (o *Observer) Payloads(topic string) []string {
	var out []string
	for _, m := range o.On(topic) {
		out = append(out, m.Payload)
	}
	return out
}

// ConnLost counts the times the observer lost its connection.
func (o *Observer) ConnLost() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.lost
}

// Publish sends a QoS 1 message and waits 5 s for its PUBACK. A failed
// publish returns paho's error as it is (tests log it as paho gave it).
func (o *Observer) Publish(topic, payload string) error {
	tok := o.c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(5 * time.Second) {
		return fmt.Errorf("publish %s: no PUBACK in 5 s", topic)
	}
	return tok.Error()
}

// Deliveries tallies the sequence numbers (1..total) a subscriber
// received, in the order received.
type Deliveries struct {
	Seen   map[uint64]int // deliveries of each sequence number
	Firsts []uint64       // sequence numbers in the order of their first delivery
	Dups   int            // deliveries beyond the first
}

// Tally counts seqs.
func Tally(seqs []uint64) Deliveries {
	d := Deliveries{Seen: map[uint64]int{}}
	for _, s := range seqs {
		if d.Seen[s] == 0 {
			d.Firsts = append(d.Firsts, s)
		} else {
			d.Dups++
		}
		d.Seen[s]++
	}
	return d
}

// Lost lists the sequence numbers of 1..total never delivered.
func (d Deliveries) Lost(total uint64) []uint64 {
	var lost []uint64
	for s := uint64(1); s <= total; s++ {
		if d.Seen[s] == 0 {
			lost = append(lost, s)
		}
	}
	return lost
}

// CheckRestart fails the test where a broker restart in the middle of
// total events cost more than QoS 1 explains: no event waited in the
// outbox while the broker was down (then the test tested no restart), the
// client republished more than the one event it has in flight (it
// publishes one at a time), or more than a tenth of the events came twice.
// Loss and order are the caller's to check.
func (d Deliveries) CheckRestart(t testing.TB, total int, pendingWhileDown, republished uint64) {
	t.Helper()
	if pendingWhileDown == 0 {
		t.Error("no event waited in the outbox while the broker was down")
	}
	if republished > 1 {
		t.Errorf("the client republished %d events; with one in flight at most 1", republished)
	}
	if d.Dups > total/10 {
		t.Errorf("%d duplicates of %d events: more than QoS 1 redelivery explains", d.Dups, total)
	}
}
