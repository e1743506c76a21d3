package site

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/facegate/facegate/daemon/mqtt/outbox"
	"github.com/nats-io/nats.go/jetstream"
)

// Event is one access event for the site's audit log.
type Event struct {
	// ID is unique per event (the daemon's event id); the events stream
	// stores one message per id.
	ID      string
	Payload []byte // the event's JSON, as published on MQTT
}

// ForwarderConfig configures OpenForwarder.
type ForwarderConfig struct {
	Gate string // this gate's id: events go to EventsSubjectPrefix+Gate
	JS   jetstream.JetStream
	// Dir holds the durable outbox (created with mode 0700).
	Dir string
	// MaxBytes bounds the undelivered events kept on disk (default 64 MiB;
	// when full the oldest are dropped and counted, see outbox).
	MaxBytes int64
	// NoSync skips fsync (tests only).
	NoSync bool
	// Attempt bounds one publish try (default 2 s).
	Attempt time.Duration
	Logger  *slog.Logger
}

// Forwarder queues events durably and forwards them in order to the
// events stream, retrying while NATS is unreachable. Enqueue is safe for
// concurrent use; Run is called once.
type Forwarder struct {
	cfg     ForwarderConfig
	subject string
	box     *outbox.Outbox
	logger  *slog.Logger
}

// OpenForwarder opens the outbox in cfg.Dir (events queued before a
// restart are forwarded by Run).
func OpenForwarder(cfg ForwarderConfig) (*Forwarder, error) {
	if !validGate(cfg.Gate) {
		return nil, fmt.Errorf("open forwarder: gate id %q must be 1-%d of [A-Za-z0-9._-]", cfg.Gate, maxGateLen)
	}
	if cfg.JS == nil {
		return nil, errors.New("open forwarder: no JetStream")
	}
	if cfg.Attempt <= 0 {
		cfg.Attempt = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	logger := cfg.Logger.With("component", "site-forwarder", "gate", cfg.Gate)
	box, err := outbox.Open(cfg.Dir, outbox.Options{MaxBytes: cfg.MaxBytes, NoSync: cfg.NoSync, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("open forwarder: %w", err)
	}
	return &Forwarder{cfg: cfg, subject: EventsSubjectPrefix + cfg.Gate, box: box, logger: logger}, nil
}

// maxEventID bounds an event id (it is a NATS header value).
const maxEventID = 256

// Enqueue stores e durably (fsync'd) for forwarding.
func (f *Forwarder) Enqueue(e Event) error {
	if e.ID == "" || len(e.ID) > maxEventID || !printable(e.ID) {
		return fmt.Errorf("enqueue event: id must be 1-%d printable bytes", maxEventID)
	}
	_, err := f.box.Append(func(uint64) ([]byte, error) {
		b := binary.AppendUvarint(nil, uint64(len(e.ID)))
		b = append(b, e.ID...)
		return append(b, e.Payload...), nil
	})
	if err != nil {
		return fmt.Errorf("enqueue event %s: %w", e.ID, err)
	}
	return nil
}

func decodeRecord(p []byte) (Event, error) {
	n, k := binary.Uvarint(p)
	if k <= 0 || n == 0 || n > maxEventID || uint64(len(p)-k) < n {
		return Event{}, errors.New("corrupt outbox record")
	}
	return Event{ID: string(p[k : k+int(n)]), Payload: p[k+int(n):]}, nil
}

// Pending returns the number of events not yet stored by the site.
func (f *Forwarder) Pending() uint64 { return f.box.Pending() }

// Dropped returns the number of events dropped because the outbox was full.
func (f *Forwarder) Dropped() uint64 { return f.box.Dropped() }

// Close closes the outbox; undelivered events stay for the next Open.
func (f *Forwarder) Close() error { return f.box.Close() }

// Run forwards events until ctx ends. Before its first publish it looks at
// the last event this gate stored in the stream: if it is the oldest
// queued one (stored, but the gate stopped before recording it), it is
// acknowledged instead of sent again, so a restart after any time never
// doubles an event. Retried publishes carry the event id, which the stream
// deduplicates.
func (f *Forwarder) Run(ctx context.Context) error {
	synced := false
	for {
		rec, err := f.box.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("forwarder: %w", err)
		}
		e, err := decodeRecord(rec.Payload)
		if err != nil {
			f.logger.Error("dropping undecodable outbox record", "seq", rec.Seq, "err", err)
			if err := f.box.Ack(rec.Seq); err != nil {
				return fmt.Errorf("forwarder: %w", err)
			}
			continue
		}
		if !synced {
			stored, err := f.lastStored(ctx)
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				f.logger.Debug("events stream unreachable", "err", err)
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(500 * time.Millisecond):
				}
				continue
			}
			synced = true
			if stored == e.ID {
				f.logger.Info("event already stored before restart", "event", e.ID)
				if err := f.box.Ack(rec.Seq); err != nil {
					return fmt.Errorf("forwarder: %w", err)
				}
				continue
			}
		}
		_, tries, err := publishRetry(ctx, f.cfg.JS, f.subject, e.Payload, e.ID, EventsStream, f.cfg.Attempt)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			// A permanent refusal (too large, wrong stream): keeping it
			// would block every later event.
			f.logger.Error("event refused by the site; dropped", "event", e.ID, "err", err)
		} else if tries > 1 {
			f.logger.Debug("event forwarded after retries", "event", e.ID, "tries", tries)
		}
		if err := f.box.Ack(rec.Seq); err != nil {
			return fmt.Errorf("forwarder: %w", err)
		}
	}
}

// lastStored returns the id of the last event of this gate in the stream
// ("" if none).
func (f *Forwarder) lastStored(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Attempt)
	defer cancel()
	s, err := f.cfg.JS.Stream(ctx, EventsStream)
	if err != nil {
		return "", err
	}
	m, err := s.GetLastMsgForSubject(ctx, f.subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return m.Header.Get(jetstream.MsgIDHeader), nil
}
