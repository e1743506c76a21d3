package site

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ReplicatorConfig configures NewReplicator.
type ReplicatorConfig struct {
	// Gate is this gate's id (the status bucket's key).
	Gate     string
	JS       jetstream.JetStream
	Applier  Applier
	Verifier Verifier // the operator's request signature; required
	Gates    GateKeys // every gate's public key; required
	// Window is the accepted difference between a request's timestamp
	// and the time the stream stored its change (default DefaultWindow).
	Window time.Duration
	// Batch bounds the entries applied in one transaction (default 512);
	// a batch is also applied as soon as the consumer has nothing pending.
	Batch int
	// OnRefused is called for each refused change before its sequence is
	// recorded (so at least once: a crash in between calls it again for
	// the same seq; use seq to deduplicate). c is nil when the message
	// could not be decoded at all. It must not block for long.
	OnRefused func(seq uint64, c *Change, err error)
	// OnApplied, when set, is called after each batch is stored with the
	// last sequence applied and the number of messages still pending.
	OnApplied func(seq, pending uint64)
	Logger    *slog.Logger
}

// Replicator applies the gallery stream to one gate's gallery.
type Replicator struct {
	cfg     ReplicatorConfig
	logger  *slog.Logger
	applied atomic.Uint64
	// consuming is true while a consumer on the gallery stream is open.
	consuming atomic.Bool
	status    chan uint64
}

// NewReplicator checks cfg.
func NewReplicator(cfg ReplicatorConfig) (*Replicator, error) {
	switch {
	case !validGate(cfg.Gate):
		return nil, fmt.Errorf("new replicator: gate id %q must be 1-%d of [A-Za-z0-9._-]", cfg.Gate, maxGateLen)
	case cfg.JS == nil:
		return nil, errors.New("new replicator: no JetStream")
	case cfg.Applier == nil:
		return nil, errors.New("new replicator: no applier")
	case cfg.Verifier == nil:
		return nil, errors.New("new replicator: no verifier (changes are never applied unverified)")
	case len(cfg.Gates) == 0:
		return nil, errors.New("new replicator: no gate keys")
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 512
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Replicator{cfg: cfg, logger: cfg.Logger.With("component", "site-replicator", "gate", cfg.Gate), status: make(chan uint64, 1)}, nil
}

// Applied returns the last sequence this replicator applied (0 before the
// first batch of this run).
func (r *Replicator) Applied() uint64 { return r.applied.Load() }

// Consuming reports whether the replicator has a consumer open on the
// gallery stream now; false while it is (re)connecting.
func (r *Replicator) Consuming() bool { return r.consuming.Load() }

// Run applies changes until ctx ends. While NATS is unreachable it keeps
// retrying (the gate goes on deciding from its local gallery); it returns
// an error only when the Applier fails, since skipping a change would
// break the gallery's order.
func (r *Replicator) Run(ctx context.Context) error {
	go r.reportStatus(ctx)
	wait := 100 * time.Millisecond
	for {
		err := r.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var ae *applyError
		if errors.As(err, &ae) {
			return err
		}
		r.logger.Warn("gallery stream unavailable; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

type applyError struct{ err error }

func (e *applyError) Error() string { return e.err.Error() }
func (e *applyError) Unwrap() error { return e.err }

// session consumes from after the applied sequence until an error.
func (r *Replicator) session(ctx context.Context) error {
	applied, err := r.cfg.Applier.Applied()
	if err != nil {
		return &applyError{fmt.Errorf("replicator: applied sequence: %w", err)}
	}
	r.applied.Store(applied)
	cc := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if applied > 0 {
		cc = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: applied + 1}
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	cons, err := r.cfg.JS.OrderedConsumer(cctx, GalleryStream, cc)
	cancel()
	if err != nil {
		return fmt.Errorf("replicator: consumer: %w", err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("replicator: messages: %w", err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	r.consuming.Store(true)
	defer r.consuming.Store(false)
	r.logger.Debug("consuming gallery stream", "from", applied+1)
	var batch []Entry
	var refused []Entry
	var pending []received
	for {
		msg, err := it.Next()
		if err != nil {
			return fmt.Errorf("replicator: next: %w", err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("replicator: metadata: %w", err)
		}
		seq := meta.Sequence.Stream
		if seq <= applied {
			continue
		}
		pending = append(pending, received{msg: msg, meta: meta})
		if len(pending) < r.cfg.Batch && meta.NumPending > 0 {
			continue
		}
		// Two Ed25519 verifications per change (gate and operator): a
		// backlog is checked on every core, then applied in order.
		r.checkAll(pending)
		for _, p := range pending {
			e := Entry{Seq: p.meta.Sequence.Stream, Change: p.change}
			if p.err != nil {
				e = Entry{Seq: e.Seq, Refused: p.err}
				refused = append(refused, Entry{Seq: e.Seq, Change: p.change, Refused: p.err})
			}
			batch = append(batch, e)
		}
		pending = pending[:0]
		for _, f := range refused {
			r.logger.Warn("gallery change refused", "seq", f.Seq, "err", f.Refused)
			if r.cfg.OnRefused != nil {
				r.cfg.OnRefused(f.Seq, f.Change, f.Refused)
			}
		}
		if err := r.cfg.Applier.Apply(batch); err != nil {
			return &applyError{fmt.Errorf("replicator: apply %d-%d: %w", batch[0].Seq, seq, err)}
		}
		applied = seq
		r.applied.Store(seq)
		if r.cfg.OnApplied != nil {
			r.cfg.OnApplied(seq, meta.NumPending)
		}
		select { // latest wins
		case <-r.status:
		default:
		}
		r.status <- seq
		batch, refused = batch[:0], refused[:0]
	}
}

// received is a message waiting to be checked, and the result.
type received struct {
	msg    jetstream.Msg
	meta   *jetstream.MsgMetadata
	change *Change
	err    error
}

// checkAll checks the messages of ps (check), concurrently on up to
// GOMAXPROCS goroutines when there are several.
func (r *Replicator) checkAll(ps []received) {
	workers := min(runtime.GOMAXPROCS(0), len(ps))
	if workers <= 1 {
		for i := range ps {
			ps[i].change, ps[i].err = r.check(ps[i].msg, ps[i].meta)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(ps); i = int(next.Add(1) - 1) {
				ps[i].change, ps[i].err = r.check(ps[i].msg, ps[i].meta)
			}
		}()
	}
	wg.Wait()
}

// check verifies one message: the origin gate's signature, structure and
// binding (Decode), the message id, the timestamp against the stored
// time, and the operator's signature (Verifier).
func (r *Replicator) check(msg jetstream.Msg, meta *jetstream.MsgMetadata) (*Change, error) {
	c, err := Decode(msg.Data(), r.cfg.Gates)
	if err != nil {
		return c, err
	}
	if id := msg.Headers().Get(jetstream.MsgIDHeader); id != c.ID {
		return c, fmt.Errorf("%w: header %q, change %q", ErrMsgID, id, c.ID)
	}
	if err := checkStored(c, meta.Timestamp, r.cfg.Window); err != nil {
		return c, err
	}
	if sv, ok := r.cfg.Verifier.(SeqVerifier); ok {
		err = sv.VerifyAt(meta.Sequence.Stream, c)
	} else {
		err = r.cfg.Verifier.Verify(c)
	}
	if err != nil {
		return c, fmt.Errorf("%w: change %s: %w", ErrUnsigned, c.ID, err)
	}
	return c, nil
}

// GateStatus is what a gate reports in the status bucket.
type GateStatus struct {
	Gate    string    `json:"gate"`
	Applied uint64    `json:"applied"`
	Updated time.Time `json:"updated"`
	// Lag is the stream's last sequence minus Applied, filled by
	// ReadStatus.
	Lag uint64 `json:"-"`
}

// reportStatus writes the latest applied sequence to the status bucket,
// off the apply path so that a slow bucket never delays replication.
func (r *Replicator) reportStatus(ctx context.Context) {
	var kv jetstream.KeyValue
	for {
		var seq uint64
		select {
		case <-ctx.Done():
			return
		case seq = <-r.status:
		}
		if kv == nil {
			kctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			b, err := r.cfg.JS.KeyValue(kctx, StatusBucket)
			cancel()
			if err != nil {
				r.logger.Debug("status bucket unavailable", "err", err)
				continue
			}
			kv = b
		}
		v, _ := json.Marshal(GateStatus{Gate: r.cfg.Gate, Applied: seq, Updated: time.Now().UTC()})
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if _, err := kv.Put(pctx, r.cfg.Gate, v); err != nil {
			r.logger.Debug("status not written", "err", err)
		}
		cancel()
	}
}

// Status is the site's replication state.
type Status struct {
	LastSeq  uint64       // the gallery stream's last sequence
	Messages uint64       // changes in the stream
	Bytes    uint64       // stream storage (one replica)
	Gates    []GateStatus // every gate that reported, by gate id
}

// ReadStatus reads the stream's state and every gate's applied sequence,
// for `facegate site status`.
func ReadStatus(ctx context.Context, js jetstream.JetStream) (Status, error) {
	s, err := js.Stream(ctx, GalleryStream)
	if err != nil {
		return Status{}, fmt.Errorf("site status: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("site status: %w", err)
	}
	st := Status{LastSeq: info.State.LastSeq, Messages: info.State.Msgs, Bytes: info.State.Bytes}
	kv, err := js.KeyValue(ctx, StatusBucket)
	if err != nil {
		return st, fmt.Errorf("site status: %w", err)
	}
	keys, err := kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("site status: keys: %w", err)
	}
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if err != nil {
			return st, fmt.Errorf("site status: gate %s: %w", k, err)
		}
		var g GateStatus
		if err := json.Unmarshal(e.Value(), &g); err != nil {
			return st, fmt.Errorf("site status: gate %s: %w", k, err)
		}
		if g.Applied < st.LastSeq {
			g.Lag = st.LastSeq - g.Applied
		}
		st.Gates = append(st.Gates, g)
	}
	slices.SortFunc(st.Gates, func(a, b GateStatus) int { return strings.Compare(a.Gate, b.Gate) })
	return st, nil
}
