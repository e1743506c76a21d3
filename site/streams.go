package site

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names on the NATS side. One site per NATS account.
const (
	// GalleryStream holds every gallery change of the site, forever (a new
	// gate builds its gallery from it).
	GalleryStream = "FACEGATE_GALLERY"
	// GallerySubject is the one subject of GalleryStream.
	GallerySubject = "facegate.gallery"
	// EventsStream is the site's audit log of access events.
	EventsStream = "FACEGATE_EVENTS"
	// EventsSubjectPrefix + gate id is the subject of a gate's events.
	EventsSubjectPrefix = "facegate.events."
	// StatusBucket is the key-value bucket of each gate's applied sequence.
	StatusBucket = "facegate_status"
)

// StreamOptions configure EnsureStreams; zero values take the defaults.
type StreamOptions struct {
	// Replicas of each stream and of the status bucket (default 3; 1 for
	// a single server).
	Replicas int
	// Duplicates is the deduplication window of both streams (default
	// 10 min). It must be at least twice the Replicator's window so that
	// a replayed request is refused either as a duplicate or as stale.
	Duplicates time.Duration
	// EventsMaxAge is how long access events are kept (default 90 days).
	EventsMaxAge time.Duration
}

func (o StreamOptions) withDefaults() StreamOptions {
	if o.Replicas == 0 {
		o.Replicas = 3
	}
	if o.Duplicates == 0 {
		o.Duplicates = 10 * time.Minute
	}
	if o.EventsMaxAge == 0 {
		o.EventsMaxAge = 90 * 24 * time.Hour
	}
	return o
}

// EnsureStreams creates or updates the site's streams and status bucket.
// It is idempotent; an operator runs it once per site (or every gate at
// start). The gallery stream refuses deletes and purges through the API,
// so a client cannot quietly drop a removal.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, o StreamOptions) error {
	o = o.withDefaults()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        GalleryStream,
		Description: "facegate gallery changes (site.Change), applied in order by every gate",
		Subjects:    []string{GallerySubject},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
		Duplicates:  o.Duplicates,
		MaxMsgSize:  2 * MaxSealedTemplates,
		DenyDelete:  true,
		DenyPurge:   true,
	}); err != nil {
		return fmt.Errorf("ensure stream %s: %w", GalleryStream, err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        EventsStream,
		Description: "facegate access events of every gate, deduplicated by event id",
		Subjects:    []string{EventsSubjectPrefix + "*"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
		Duplicates:  o.Duplicates,
		MaxAge:      o.EventsMaxAge,
	}); err != nil {
		return fmt.Errorf("ensure stream %s: %w", EventsStream, err)
	}
	if _, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      StatusBucket,
		Description: "each gate's last applied gallery sequence",
		History:     1,
		Replicas:    o.Replicas,
		Storage:     jetstream.FileStorage,
	}); err != nil {
		return fmt.Errorf("ensure bucket %s: %w", StatusBucket, err)
	}
	return nil
}
