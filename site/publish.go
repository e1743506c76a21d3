package site

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrPublish: a change could not be stored in the stream before the
// publisher's deadline (no quorum for longer than a leader election).
var ErrPublish = errors.New("site: change not stored")

// Publisher appends changes to the gallery stream. It is safe for
// concurrent use.
type Publisher struct {
	js      jetstream.JetStream
	key     ed25519.PrivateKey
	timeout time.Duration
	attempt time.Duration
	logger  *slog.Logger
}

// PublisherConfig configures NewPublisher.
type PublisherConfig struct {
	JS jetstream.JetStream
	// Key is this gate's Ed25519 signing key (LoadGateKey).
	Key ed25519.PrivateKey
	// Timeout bounds one Publish, retries included (default 20 s: a
	// leader election takes 5-9 s).
	Timeout time.Duration
	// Attempt bounds one try (default 2 s).
	Attempt time.Duration
	Logger  *slog.Logger
}

// NewPublisher checks cfg and returns a Publisher.
func NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if cfg.JS == nil {
		return nil, errors.New("new publisher: no JetStream")
	}
	if len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("new publisher: no gate key")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 20 * time.Second
	}
	if cfg.Attempt <= 0 {
		cfg.Attempt = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Publisher{js: cfg.JS, key: cfg.Key, timeout: cfg.Timeout, attempt: cfg.Attempt, logger: cfg.Logger.With("component", "site-publisher")}, nil
}

// Publish signs c with the gate's key and appends it to the gallery
// stream with c.ID as the message id, retrying through a leader failover
// until the publisher's timeout. It returns the stream sequence of the
// change (of the first copy if it was already stored). Retries never
// store it twice: the stream deduplicates on the id.
func (p *Publisher) Publish(ctx context.Context, c *Change) (uint64, error) {
	if err := c.Validate(); err != nil {
		return 0, err
	}
	data, err := Encode(c, p.key)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	ack, tries, err := publishRetry(ctx, p.js, GallerySubject, data, c.ID, GalleryStream, p.attempt)
	if err != nil {
		return 0, fmt.Errorf("%w: change %s after %d tries: %w", ErrPublish, c.ID, tries, err)
	}
	if tries > 1 {
		p.logger.Info("change stored after retries", "change", c.ID, "seq", ack.Sequence, "tries", tries, "duplicate", ack.Duplicate)
	}
	return ack.Sequence, nil
}

// publishRetry publishes data with msgID until it is acknowledged, ctx
// ends, or the server refuses it for good (a 4xx API error other than a
// timeout).
func publishRetry(ctx context.Context, js jetstream.JetStream, subject string, data []byte, msgID, stream string, attempt time.Duration) (*jetstream.PubAck, int, error) {
	wait := 50 * time.Millisecond
	for tries := 1; ; tries++ {
		actx, cancel := context.WithTimeout(ctx, attempt)
		ack, err := js.Publish(actx, subject, data, jetstream.WithMsgID(msgID), jetstream.WithExpectStream(stream))
		cancel()
		if err == nil {
			return ack, tries, nil
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.Code >= 400 && apiErr.Code < 500 && apiErr.Code != 408 {
			return nil, tries, err
		}
		select {
		case <-ctx.Done():
			return nil, tries, fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}
