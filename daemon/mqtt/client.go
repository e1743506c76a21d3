package mqtt

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/facegate/facegate/daemon/mqtt/outbox"
)

// Handlers are the daemon's side of the request topics. Each is called
// from a worker goroutine of the Client, never from the MQTT client's
// callbacks, so they may take their time; Enroll runs on its own worker so
// a slow enroll_from_camera does not delay claims.
type Handlers struct {
	// Enroll executes a decoded, authenticated enroll request and returns
	// its reply (RequestID, Op and Time are filled in by the Client; an
	// empty Status becomes error when Code is set, else ok).
	Enroll func(ctx context.Context, r *EnrollRequest) EnrollReply
	// Claim starts a 1:1 verification; its outcome is an Event.
	Claim func(ctx context.Context, c *Claim)
	// Feedback records an operator's verdict (see Stats.Feedback).
	Feedback func(ctx context.Context, f *Feedback)
	// Authenticate verifies a request's signature (daemon/auth) and accepts
	// it, at most once ever: it runs on the worker just before the request
	// is executed. An error implementing CodedError gives the reply code
	// (replay, internal), any other error means unauthorised. When nil,
	// enroll requests are refused unless Config.InsecureNoAuth.
	Authenticate func(ctx context.Context, s Signed) error
	// Admit checks a request's signature and freshness without accepting
	// it (auth.Verifier.Check). It runs on the MQTT callback as each
	// message arrives, so that a forged or stale request never takes a
	// queue slot or a busy reply from a signed one. Optional.
	Admit func(s Signed) error
	// Stats returns the current statistics for the stats topic; the
	// Client fills in the device id, time and its own counters.
	Stats func() Stats
}

// Client is facegate's MQTT side: it keeps the broker connection, answers
// requests through Handlers, publishes events through the durable outbox,
// the retained status, periodic stats and Home Assistant discovery.
//
// Admission and overload policy: an enroll request is decoded, size-checked
// and its signature checked (Handlers.Admit) on arrival, before it takes a
// queue slot. Each request queue holds Config.QueueSize requests. When the
// enroll queue is full an admitted request is answered at once with code
// busy. Replies to admitted requests (ok, error or busy) go through their
// own queue, large enough for every admitted request and never dropped;
// replies to requests refused at admission (malformed, unauthorised) go
// through a small best-effort queue that drops (and counts) under a flood,
// so a forger cannot crowd out real replies. When the claim/feedback queue
// is full the message is dropped and counted: a claim is only useful
// within seconds, and the requester sees no event for it. Every dropped or
// busy request is counted once (Counters).
type Client struct {
	cfg     Config
	h       Handlers
	log     *slog.Logger
	topics  Topics
	factory connFactory
	ob      *outbox.Outbox

	conn conn

	mu          sync.Mutex
	connected   bool
	connectedAt time.Time
	up          chan struct{} // closed while connected

	enrollQ chan *EnrollRequest
	otherQ  chan any     // *Claim or *Feedback
	replyQ  chan message // replies to admitted requests: never dropped
	refuseQ chan message // replies to refused requests: best effort
	chQ     chan message // challenges: best effort, first
	kick    chan struct{}

	password string
	tls      *tls.Config
	connLog  connLogger

	requestsDropped  atomic.Uint64 // claims/feedback dropped on a full queue
	requestsBusy     atomic.Uint64 // enroll requests answered busy
	requestsRejected atomic.Uint64 // malformed or unauthenticated
	repliesDropped   atomic.Uint64 // best-effort replies dropped
	republished      atomic.Uint64
}

// replyQueueMin is the least capacity of the admitted requests' reply
// queue: a burst of this many signed requests is answered in full.
const replyQueueMin = 4096

// shutdownGrace bounds how long Run waits for its workers (and so for
// handlers in progress) after ctx is cancelled.
const shutdownGrace = 5 * time.Second

// New validates cfg and opens the outbox; nothing touches the network
// until Run. logger may be nil.
func New(cfg Config, h Handlers, logger *slog.Logger) (*Client, error) {
	return newClient(cfg, h, logger, newPahoConn)
}

func newClient(cfg Config, h Handlers, logger *slog.Logger, f connFactory) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mqtt config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	log := logger.With("component", "mqtt", "device_id", cfg.DeviceID)
	// Credentials and TLS files are read now, so that a missing or
	// unreadable file stops the daemon before READY instead of leaving it
	// running with MQTT down.
	pw, err := cfg.password()
	if err != nil {
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	tlsCfg, err := cfg.TLSConfig()
	if err != nil {
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	ob, err := outbox.Open(cfg.OutboxDir, outbox.Options{MaxBytes: cfg.OutboxMaxBytes, Logger: log.With("component", "mqtt/outbox")})
	if err != nil {
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	return &Client{
		cfg:      cfg,
		h:        h,
		log:      log,
		topics:   NewTopics(cfg.Prefix, cfg.DeviceID),
		factory:  f,
		ob:       ob,
		up:       make(chan struct{}),
		enrollQ:  make(chan *EnrollRequest, cfg.QueueSize),
		otherQ:   make(chan any, cfg.QueueSize),
		replyQ:   make(chan message, max(replyQueueMin, 4*cfg.QueueSize)),
		refuseQ:  make(chan message, 64),
		chQ:      make(chan message, 8),
		kick:     make(chan struct{}, 1),
		password: pw,
		tls:      tlsCfg,
		connLog:  connLogger{log: log, every: 30 * time.Second},
	}, nil
}

// Topics returns the device's topic names.
func (c *Client) Topics() Topics { return c.topics }

// Connected reports whether the broker connection is up.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected
}

// PublishEvent durably queues an event for QoS 1 delivery and returns it
// with its sequence number and device id filled in. It returns once the
// event is fsync'd in the outbox, whether or not the broker is reachable.
// The image is removed unless Config.EventImages is set.
func (c *Client) PublishEvent(e Event) (Event, error) {
	e.DeviceID = c.cfg.DeviceID
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	if !c.cfg.EventImages {
		e.Image = ""
	}
	seq, err := c.ob.Append(func(seq uint64) ([]byte, error) {
		e.Seq = seq
		return json.Marshal(e)
	})
	if err != nil {
		return e, fmt.Errorf("queue event %s: %w", e.ID, err)
	}
	e.Seq = seq
	return e, nil
}

// Run connects and serves until ctx is cancelled, then publishes the
// retained offline status, disconnects and closes the outbox (undelivered
// events stay on disk for the next start). It returns nil on a clean stop.
func (c *Client) Run(ctx context.Context) error {
	if b := c.cfg.PlaintextCredentialsTo(); b != "" {
		c.log.Warn("MQTT credentials are sent without TLS", "broker", b)
	}
	c.conn = c.factory(connOptions{
		Brokers:              c.cfg.Brokers,
		ClientID:             c.cfg.ClientID,
		Username:             c.cfg.Username,
		Password:             c.password,
		TLS:                  c.tls,
		KeepAlive:            c.cfg.KeepAlive,
		ConnectTimeout:       c.cfg.ConnectTimeout,
		MaxReconnectInterval: c.cfg.MaxReconnectInterval,
		WillTopic:            c.topics.Status,
		WillPayload:          []byte(StatusOffline),
		OnConnect:            c.onConnect,
		OnLost:               c.onLost,
		OnAttemptFailed:      c.connLog.failed,
	})
	c.log.Info("connecting to MQTT broker", "brokers", c.cfg.Brokers, "client_id", c.cfg.ClientID)
	c.conn.Connect() // retries in the background until connected or Disconnect

	var wg sync.WaitGroup
	for _, f := range []func(context.Context){c.deliverLoop, c.enrollLoop, c.otherLoop, c.replyLoop, c.statsLoop} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(ctx)
		}()
	}
	<-ctx.Done()
	stopped := make(chan struct{})
	go func() {
		wg.Wait()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(shutdownGrace):
		c.log.Error("MQTT workers did not stop in time (a handler ignores its context?)", "grace", shutdownGrace)
	}

	if c.Connected() {
		tok := c.conn.Publish(c.topics.Status, 1, true, []byte(StatusOffline))
		select {
		case <-tok.Done():
		case <-time.After(2 * time.Second):
			c.log.Warn("offline status not acknowledged before disconnect")
		}
	}
	c.conn.Disconnect(250 * time.Millisecond)
	c.setConnected(false)
	if err := c.ob.Close(); err != nil {
		return fmt.Errorf("mqtt: close outbox: %w", err)
	}
	c.log.Info("MQTT stopped", "outbox_pending", c.ob.Pending())
	return nil
}

func (c *Client) setConnected(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if on == c.connected {
		return
	}
	c.connected = on
	if on {
		c.connectedAt = time.Now()
		close(c.up)
	} else {
		c.up = make(chan struct{})
	}
}

// waitConnected blocks until the connection is up.
func (c *Client) waitConnected(ctx context.Context) error {
	c.mu.Lock()
	up := c.up
	c.mu.Unlock()
	select {
	case <-up:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// onConnect runs in its own goroutine (paho starts it) after every
// connection: subscriptions are (re)made here, then the retained online
// status and the discovery configs are published.
func (c *Client) onConnect() {
	c.log.Info("MQTT connected")
	c.connLog.connected()
	subs := []struct {
		topic string
		cb    func(string, []byte)
	}{
		{c.topics.EnrollRequest, c.onEnroll},
		{c.topics.Claim, c.onClaim},
		{c.topics.Feedback, c.onFeedback},
	}
	for _, s := range subs {
		if err := c.wait(c.conn.Subscribe(s.topic, 1, s.cb)); err != nil {
			c.log.Error("subscribe failed", "topic", s.topic, "err", err)
		}
	}
	if err := c.wait(c.conn.Publish(c.topics.Status, 1, true, []byte(StatusOnline))); err != nil {
		c.log.Error("publish online status failed", "err", err)
	}
	if c.cfg.HADiscovery {
		msgs, err := haDiscovery(&c.cfg, c.topics)
		if err != nil {
			c.log.Error("home assistant discovery", "err", err)
		}
		for _, m := range msgs {
			if err := c.wait(c.conn.Publish(m.topic, 1, m.retained, m.payload)); err != nil {
				c.log.Warn("publish home assistant discovery failed", "topic", m.topic, "err", err)
			}
		}
	}
	c.setConnected(true)
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *Client) onLost(err error) {
	c.setConnected(false)
	c.log.Warn("MQTT connection lost; reconnecting", "err", err, "outbox_pending", c.ob.Pending())
}

// wait waits for a token up to PublishTimeout.
func (c *Client) wait(t token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-time.After(c.cfg.PublishTimeout):
		return errors.New("timed out waiting for the broker")
	}
}

// onEnroll, onClaim and onFeedback run on paho's goroutine: they only
// decode and hand off, never block.
func (c *Client) onEnroll(_ string, payload []byte) {
	r, err := DecodeEnrollRequest(payload, c.cfg.Limits)
	if err != nil {
		c.requestsRejected.Add(1)
		id := RequestIDOf(payload, c.cfg.Limits)
		c.log.Warn("rejected enroll request", "request_id", id, "err", err)
		var de *DecodeError
		rep := EnrollReply{RequestID: id, Status: ReplyError, Code: CodeOf(err), Message: err.Error()}
		if errors.As(err, &de) && de.Image >= 0 {
			rep.ImageIndex = &de.Image
		}
		c.queueReply(c.refuseQ, rep)
		return
	}
	if deny := c.admit(r); deny != nil {
		c.requestsRejected.Add(1)
		deny.RequestID, deny.Op = r.RequestID, r.Op
		c.queueReply(c.refuseQ, *deny)
		return
	}
	select {
	case c.enrollQ <- r:
	default:
		c.requestsBusy.Add(1)
		c.queueReply(c.replyQ, EnrollReply{RequestID: r.RequestID, Op: r.Op, Status: ReplyError, Code: CodeBusy, Message: "enrollment queue full, retry later"})
	}
}

// admit runs the cheap checks of a signed request as it arrives: a refusal
// is returned as the reply to send. Only "unauthorised" is said, whatever
// failed (unknown key, bad signature, stale timestamp): the reason is
// logged, so a client cannot probe for valid key ids.
func (c *Client) admit(r *EnrollRequest) *EnrollReply {
	if c.h.Authenticate == nil {
		if c.cfg.InsecureNoAuth {
			return nil
		}
		c.log.Warn("request not authenticated", "op", r.Operation(), "request_id", r.RequestID, "err", "no request authenticator configured")
		return &EnrollReply{Status: ReplyError, Code: CodeUnauthorised, Message: string(CodeUnauthorised)}
	}
	if c.h.Admit == nil {
		return nil
	}
	if err := c.h.Admit(r); err != nil {
		return c.refusal(r, err)
	}
	return nil
}

// refusal logs why a request was not authenticated and returns the reply
// that says no more than its code.
func (c *Client) refusal(s Signed, err error) *EnrollReply {
	code := CodeUnauthorised
	var ce CodedError
	if errors.As(err, &ce) {
		code = ce.ReplyCode()
	}
	c.log.Warn("request not authenticated", "op", s.Operation(), "request_id", s.ID(), "key_id", s.AuthFields().KeyID, "code", code, "err", err)
	msg := string(code)
	if code == CodeReplay {
		msg = "request already accepted once (replay)"
	}
	return &EnrollReply{Status: ReplyError, Code: code, Message: msg}
}

func (c *Client) onClaim(_ string, payload []byte) {
	cl, err := DecodeClaim(payload, c.cfg.Limits)
	if err != nil {
		c.requestsRejected.Add(1)
		c.log.Warn("rejected claim", "err", err)
		return
	}
	c.enqueueOther(cl)
}

func (c *Client) onFeedback(_ string, payload []byte) {
	f, err := DecodeFeedback(payload, c.cfg.Limits)
	if err != nil {
		c.requestsRejected.Add(1)
		c.log.Warn("rejected feedback", "err", err)
		return
	}
	c.enqueueOther(f)
}

func (c *Client) enqueueOther(v any) {
	select {
	case c.otherQ <- v:
	default:
		n := c.requestsDropped.Add(1)
		c.log.Warn("request queue full, dropping", "type", fmt.Sprintf("%T", v), "dropped_total", n)
	}
}

// queueReply hands a reply to the reply loop through q (replyQ or
// refuseQ). A reply without a request id goes to enroll/reply/invalid.
func (c *Client) queueReply(q chan message, r EnrollReply) {
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	b, err := json.Marshal(r)
	if err != nil {
		c.log.Error("encode reply", "err", err)
		return
	}
	select {
	case q <- message{topic: c.topics.EnrollReply(r.RequestID), payload: b}:
	default:
		n := c.repliesDropped.Add(1)
		if n == 1 || n%100 == 0 {
			c.log.Warn("reply queue full, dropping reply", "request_id", r.RequestID, "admitted", q == c.replyQ, "dropped_total", n)
		}
	}
}

func (c *Client) authenticate(ctx context.Context, s Signed, required bool) *EnrollReply {
	if c.h.Authenticate == nil {
		if required && !c.cfg.InsecureNoAuth {
			return &EnrollReply{Status: ReplyError, Code: CodeUnauthorised, Message: "no request authenticator configured"}
		}
		return nil
	}
	if !required {
		return nil
	}
	if err := c.h.Authenticate(ctx, s); err != nil {
		return c.refusal(s, err)
	}
	return nil
}

func (c *Client) enrollLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-c.enrollQ:
			rep := c.handleEnroll(ctx, r)
			c.publishReply(ctx, rep)
		}
	}
}

func (c *Client) handleEnroll(ctx context.Context, r *EnrollRequest) (rep EnrollReply) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("enroll handler panicked", "request_id", r.RequestID, "panic", p)
			rep = EnrollReply{Status: ReplyError, Code: CodeInternal, Message: "internal error"}
		}
		rep.RequestID, rep.Op = r.RequestID, r.Op
		if rep.Time.IsZero() {
			rep.Time = time.Now().UTC()
		}
		if rep.Status == "" {
			rep.Status = ReplyOK
			if rep.Code != "" {
				rep.Status = ReplyError
			}
		}
		if rep.Status == ReplyError && rep.Code == "" {
			rep.Code = CodeInternal
		}
		c.log.Info("enroll request", "request_id", r.RequestID, "op", r.Op, "subject_id", r.SubjectID, "status", rep.Status, "code", rep.Code)
	}()
	if deny := c.authenticate(ctx, r, true); deny != nil {
		return *deny
	}
	if c.h.Enroll == nil {
		return EnrollReply{Status: ReplyError, Code: CodeInternal, Message: "enrollment is not available on this device"}
	}
	return c.h.Enroll(ctx, r)
}

func (c *Client) publishReply(ctx context.Context, rep EnrollReply) {
	b, err := json.Marshal(rep)
	if err != nil {
		c.log.Error("encode reply", "err", err)
		return
	}
	c.publishMessage(ctx, message{topic: c.topics.EnrollReply(rep.RequestID), payload: b})
}

// publishMessage publishes a QoS 1 non-retained message, waiting for the
// connection first (replies are not kept across restarts).
func (c *Client) publishMessage(ctx context.Context, m message) {
	if err := c.waitConnected(ctx); err != nil {
		return
	}
	if err := c.wait(c.conn.Publish(m.topic, 1, m.retained, m.payload)); err != nil {
		c.log.Warn("publish failed", "topic", m.topic, "err", err)
	}
}

// PublishChallenge queues a challenge for the challenge topic (QoS 1, not
// retained, not kept across restarts: a challenge is useful for seconds).
// It never blocks; a full queue drops it with an error.
func (c *Client) PublishChallenge(ch Challenge) error {
	ch.DeviceID = c.cfg.DeviceID
	b, err := json.Marshal(ch)
	if err != nil {
		return fmt.Errorf("encode challenge: %w", err)
	}
	select {
	case c.chQ <- message{topic: c.topics.Challenge, payload: b}:
		return nil
	default:
		return errors.New("challenge queue full")
	}
}

// replyLoop publishes challenges first, then replies, those to admitted
// requests first.
func (c *Client) replyLoop(ctx context.Context) {
	for {
		select {
		case m := <-c.chQ:
			c.publishMessage(ctx, m)
			continue
		default:
		}
		select {
		case m := <-c.replyQ:
			c.publishMessage(ctx, m)
			continue
		default:
		}
		select {
		case <-ctx.Done():
			return
		case m := <-c.chQ:
			c.publishMessage(ctx, m)
		case m := <-c.replyQ:
			c.publishMessage(ctx, m)
		case m := <-c.refuseQ:
			c.publishMessage(ctx, m)
		}
	}
}

func (c *Client) otherLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case v := <-c.otherQ:
			c.handleOther(ctx, v)
		}
	}
}

func (c *Client) handleOther(ctx context.Context, v any) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("request handler panicked", "type", fmt.Sprintf("%T", v), "panic", p)
		}
	}()
	switch r := v.(type) {
	case *Claim:
		if c.authenticate(ctx, r, c.cfg.AuthenticateAll) != nil {
			c.requestsRejected.Add(1)
			return
		}
		if c.h.Claim != nil {
			c.h.Claim(ctx, r)
		}
	case *Feedback:
		if c.authenticate(ctx, r, c.cfg.AuthenticateAll) != nil {
			c.requestsRejected.Add(1)
			return
		}
		if c.h.Feedback != nil {
			c.h.Feedback(ctx, r)
		}
	}
}

// deliverLoop sends outbox events one at a time, in sequence order, and
// acks each on PUBACK. One event in flight keeps the order on every
// reconnect (paho resends its in-flight messages in no fixed order).
func (c *Client) deliverLoop(ctx context.Context) {
	for {
		rec, err := c.ob.Next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.log.Error("outbox read failed", "err", err)
			}
			return
		}
		if !c.deliver(ctx, rec) {
			return
		}
	}
}

// deliver publishes rec until it is acknowledged; false when ctx ended.
func (c *Client) deliver(ctx context.Context, rec outbox.Record) bool {
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if c.waitConnected(ctx) != nil {
			return false
		}
		if attempt > 0 {
			c.republished.Add(1)
		}
		tok := c.conn.Publish(c.topics.Events, 1, false, rec.Payload)
		// While the connection is down paho keeps the message and resends
		// it on reconnect, completing tok; only a connected client that
		// gets no PUBACK within PublishTimeout publishes it again.
		timer := time.NewTicker(c.cfg.PublishTimeout)
	wait:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return false
			case <-tok.Done():
				break wait
			case <-timer.C:
				c.mu.Lock()
				stale := c.connected && time.Since(c.connectedAt) >= c.cfg.PublishTimeout
				c.mu.Unlock()
				if stale {
					break wait
				}
			}
		}
		timer.Stop()
		select {
		case <-tok.Done():
			if tok.Error() == nil {
				if err := c.ob.Ack(rec.Seq); err != nil {
					c.log.Error("outbox ack failed", "seq", rec.Seq, "err", err)
				}
				return true
			}
			c.log.Debug("event publish failed; retrying", "seq", rec.Seq, "err", tok.Error())
		default:
			c.log.Warn("no PUBACK for event; publishing again", "seq", rec.Seq)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (c *Client) statsLoop(ctx context.Context) {
	if c.h.Stats == nil {
		return
	}
	t := time.NewTicker(c.cfg.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
		}
		if !c.Connected() {
			continue
		}
		s := c.h.Stats()
		s.DeviceID = c.cfg.DeviceID
		if s.Time.IsZero() {
			s.Time = time.Now().UTC()
		}
		s.OutboxPending = c.ob.Pending()
		s.OutboxDropped = c.ob.Dropped()
		s.RequestsDropped = c.requestsDropped.Load() + c.requestsBusy.Load()
		s.RepliesDropped = c.repliesDropped.Load()
		b, err := json.Marshal(s)
		if err != nil {
			c.log.Error("encode stats", "err", err)
			continue
		}
		if err := c.wait(c.conn.Publish(c.topics.Stats, 1, true, b)); err != nil {
			c.log.Warn("publish stats failed", "err", err)
		}
	}
}

// Counters are the client's own counters, for logs and tests. Each
// request is counted at most once: RequestsDropped (a claim or feedback
// dropped on a full queue), RequestsBusy (an enroll request answered
// busy) or RequestsRejected (malformed or not authenticated).
// RepliesDropped counts best-effort replies to refused requests that a
// flood left unsent.
type Counters struct {
	RequestsDropped, RequestsBusy, RequestsRejected, RepliesDropped, Republished, OutboxPending, OutboxDropped uint64
}

// Counters returns a snapshot of the client's counters.
func (c *Client) Counters() Counters {
	return Counters{
		RequestsDropped:  c.requestsDropped.Load(),
		RequestsBusy:     c.requestsBusy.Load(),
		RequestsRejected: c.requestsRejected.Load(),
		RepliesDropped:   c.repliesDropped.Load(),
		Republished:      c.republished.Load(),
		OutboxPending:    c.ob.Pending(),
		OutboxDropped:    c.ob.Dropped(),
	}
}
