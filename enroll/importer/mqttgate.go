package importer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/facegate/facegate/daemon/auth"
	"github.com/facegate/facegate/daemon/mqtt"
)

// MQTTGate is the Gate of a running daemon: each request is signed with
// Key for Device (HMAC-SHA256, docs/security.md), published on
// <prefix>/<device>/enroll/request, and answered on
// enroll/reply/<request_id>, which it subscribes to once with a wildcard.
//
// Use OnConnect as the paho client's on-connect handler (the subscription
// then survives a reconnection), then Attach the connected client.
type MQTTGate struct {
	key     auth.Key
	device  string
	topics  mqtt.Topics
	timeout time.Duration
	log     *slog.Logger

	mu      sync.Mutex
	cl      paho.Client
	waiting map[string]chan mqtt.EnrollReply
	ready   chan struct{} // closed once the reply subscription is in place
	once    sync.Once
}

// NewMQTTGate returns a gate client for device under topic prefix prefix;
// timeout bounds the wait for each reply.
func NewMQTTGate(key auth.Key, prefix, device string, timeout time.Duration, log *slog.Logger) *MQTTGate {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &MQTTGate{key: key, device: device, topics: mqtt.NewTopics(prefix, device), timeout: timeout, log: log,
		waiting: map[string]chan mqtt.EnrollReply{}, ready: make(chan struct{})}
}

// OnConnect subscribes to the gate's enrollment replies. paho runs it on
// its own goroutine after each connection.
func (g *MQTTGate) OnConnect(cl paho.Client) {
	t := cl.Subscribe(g.topics.EnrollReply("+"), 1, g.onReply)
	go func() {
		if !t.WaitTimeout(g.timeout) || t.Error() != nil {
			g.log.Error("subscribe to enrollment replies failed", "topic", g.topics.EnrollReply("+"), "err", t.Error())
			return
		}
		g.once.Do(func() { close(g.ready) })
	}()
}

// Attach gives the gate the connected client it publishes with.
func (g *MQTTGate) Attach(cl paho.Client) {
	g.mu.Lock()
	g.cl = cl
	g.mu.Unlock()
}

// onReply hands a reply to the request waiting for it; it never blocks
// (paho's handlers must not).
func (g *MQTTGate) onReply(_ paho.Client, m paho.Message) {
	var rep mqtt.EnrollReply
	if err := json.Unmarshal(m.Payload(), &rep); err != nil {
		g.log.Warn("unreadable enrollment reply", "topic", m.Topic(), "err", err)
		return
	}
	g.mu.Lock()
	ch := g.waiting[rep.RequestID]
	g.mu.Unlock()
	if ch != nil {
		select {
		case ch <- rep:
		default: // a QoS 1 duplicate
		}
	}
}

// Do implements Gate.
func (g *MQTTGate) Do(ctx context.Context, req mqtt.EnrollRequest) (mqtt.EnrollReply, error) {
	timer := time.NewTimer(g.timeout)
	defer timer.Stop()
	select {
	case <-g.ready:
	case <-ctx.Done():
		return mqtt.EnrollReply{}, ctx.Err()
	case <-timer.C:
		return mqtt.EnrollReply{}, fmt.Errorf("%w: not subscribed to the replies within %s", ErrNoReply, g.timeout)
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	req.RequestID = hex.EncodeToString(id[:])
	req.Auth = mqtt.Auth{}
	a, err := mqtt.Sign(g.key, &req, g.device, time.Now())
	if err != nil { // a field the gate would refuse: a reply of our own
		return mqtt.EnrollReply{RequestID: req.RequestID, Op: req.Op, Status: mqtt.ReplyError, Code: mqtt.CodeBadRequest, Message: err.Error()}, nil
	}
	req.Auth = a
	payload, err := json.Marshal(&req)
	if err != nil {
		return mqtt.EnrollReply{}, fmt.Errorf("encode request: %w", err)
	}
	ch := make(chan mqtt.EnrollReply, 1)
	g.mu.Lock()
	cl := g.cl
	g.waiting[req.RequestID] = ch
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.waiting, req.RequestID)
		g.mu.Unlock()
	}()
	if cl == nil {
		return mqtt.EnrollReply{}, fmt.Errorf("%w: no MQTT client attached", ErrNoReply)
	}
	t := cl.Publish(g.topics.EnrollRequest, 1, false, payload)
	select {
	case <-t.Done():
		if t.Error() != nil {
			return mqtt.EnrollReply{}, fmt.Errorf("%w: publish: %v", ErrNoReply, t.Error())
		}
	case <-ctx.Done():
		return mqtt.EnrollReply{}, ctx.Err()
	case <-timer.C:
		return mqtt.EnrollReply{}, fmt.Errorf("%w: publish not acknowledged within %s", ErrNoReply, g.timeout)
	}
	select {
	case rep := <-ch:
		return rep, nil
	case <-ctx.Done():
		return mqtt.EnrollReply{}, ctx.Err()
	case <-timer.C:
		return mqtt.EnrollReply{}, fmt.Errorf("%w: %s %s: none within %s", ErrNoReply, req.Op, req.SubjectID, g.timeout)
	}
}
