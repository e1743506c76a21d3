package mqtt

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// fakeConn is an in-memory broker connection for unit tests: publishes
// complete at once while "connected" and fail with errNotConnected while
// not; Subscribe records the callback; deliver plays the role of paho's
// router goroutine.
type fakeConn struct {
	mu        sync.Mutex
	opts      connOptions
	connected bool
	subs      map[string]func(string, []byte)
	subCalls  []string
	pubs      []fakePub
	changed   chan struct{}
}

type fakePub struct {
	topic    string
	qos      byte
	retained bool
	payload  string
}

type fakeToken struct {
	done chan struct{}
	err  error
}

func (t *fakeToken) Done() <-chan struct{} { return t.done }
func (t *fakeToken) Error() error          { return t.err }

func doneToken(err error) *fakeToken {
	t := &fakeToken{done: make(chan struct{}), err: err}
	close(t.done)
	return t
}

var errNotConnected = errors.New("fake: not connected")

func newFakeConn() *fakeConn {
	return &fakeConn{subs: map[string]func(string, []byte){}, changed: make(chan struct{}, 1000)}
}

func (f *fakeConn) factory(o connOptions) conn {
	f.mu.Lock()
	f.opts = o
	f.mu.Unlock()
	return f
}

func (f *fakeConn) notify() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// Connect connects at once (the test can drop and re-up).
func (f *fakeConn) Connect() token {
	f.up()
	return doneToken(nil)
}

func (f *fakeConn) up() {
	f.mu.Lock()
	f.connected = true
	f.subs = map[string]func(string, []byte){} // a fresh broker: nothing remembered
	on := f.opts.OnConnect
	f.mu.Unlock()
	go on()
}

func (f *fakeConn) drop() {
	f.mu.Lock()
	f.connected = false
	lost := f.opts.OnLost
	f.mu.Unlock()
	lost(errors.New("fake: connection reset"))
}

func (f *fakeConn) Disconnect(time.Duration) {
	f.mu.Lock()
	f.connected = false
	f.mu.Unlock()
}

func (f *fakeConn) Publish(topic string, qos byte, retained bool, payload []byte) token {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.connected {
		return doneToken(errNotConnected)
	}
	f.pubs = append(f.pubs, fakePub{topic, qos, retained, string(payload)})
	f.notify()
	return doneToken(nil)
}

func (f *fakeConn) Subscribe(topic string, qos byte, cb func(string, []byte)) token {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.connected {
		return doneToken(errNotConnected)
	}
	f.subs[topic] = cb
	f.subCalls = append(f.subCalls, topic)
	f.notify()
	return doneToken(nil)
}

// deliver calls the subscription callback like paho's router goroutine
// and returns how long the callback took.
func (f *fakeConn) deliver(topic, payload string) (time.Duration, bool) {
	f.mu.Lock()
	cb := f.subs[topic]
	f.mu.Unlock()
	if cb == nil {
		return 0, false
	}
	start := time.Now()
	cb(topic, []byte(payload))
	return time.Since(start), true
}

func (f *fakeConn) published(prefix string) []fakePub {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakePub
	for _, p := range f.pubs {
		if strings.HasPrefix(p.topic, prefix) {
			out = append(out, p)
		}
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return cond()
}

func nilLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func mochiClient(remote string) *mochi.Client {
	return &mochi.Client{Net: mochi.ClientConnection{Remote: remote}}
}

func connectPacket(user, pass string) packets.Packet {
	return packets.Packet{Connect: packets.ConnectParams{Username: []byte(user), Password: []byte(pass)}}
}
