package capture

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// LatestOptions configures a Latest stage.
type LatestOptions struct {
	// Metrics receives FrameOut, Dropped, Corrupt and Decoded counts
	// (may be nil).
	Metrics *Metrics
	// Decode makes Next return frames with Image set, decoded in the
	// caller's goroutine; undecodable frames are skipped and counted.
	Decode bool
	// Logger for skipped frames (default slog.Default()).
	Logger *slog.Logger
}

// Latest reads a Source in its own goroutine and keeps only the newest
// frame: a consumer slower than the camera never sees stale queued frames,
// and every frame that is replaced before it was taken is counted as
// dropped. Decoding (optional) happens in Next, so frames that are dropped
// are never decoded.
type Latest struct {
	src    Source
	opts   LatestOptions
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
	notify chan struct{}

	mu      sync.Mutex
	pending *Frame
	err     error
	closed  bool
}

// NewLatest starts reading src. Close stops the reader and closes src.
func NewLatest(src Source, opts LatestOptions) *Latest {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Latest{
		src:    src,
		opts:   opts,
		log:    opts.Logger,
		cancel: cancel,
		done:   make(chan struct{}),
		notify: make(chan struct{}, 1),
	}
	if l.log == nil {
		l.log = slog.Default()
	}
	go l.run(ctx)
	return l
}

func (l *Latest) run(ctx context.Context) {
	defer close(l.done)
	for {
		f, err := l.src.Next(ctx)
		l.mu.Lock()
		if err != nil {
			if ctx.Err() != nil {
				err = ErrClosed
			}
			l.err = err
			l.mu.Unlock()
			l.wake()
			return
		}
		if l.pending != nil {
			l.opts.Metrics.Dropped(1)
		}
		l.pending = &f
		l.mu.Unlock()
		l.wake()
	}
}

func (l *Latest) wake() {
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

// Next returns the newest frame not returned before. It blocks until one
// arrives, ctx is done, or the source has failed or ended; the source's
// error (io.EOF for a finished file) is returned once no frame is pending.
func (l *Latest) Next(ctx context.Context) (Frame, error) {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return Frame{}, ErrClosed
		}
		if p := l.pending; p != nil {
			l.pending = nil
			l.mu.Unlock()
			f := *p
			if l.opts.Decode && f.Image == nil {
				t0 := time.Now()
				_, err := f.RGB()
				if err != nil {
					if errors.Is(err, ErrCorrupt) {
						l.opts.Metrics.Corrupt()
						l.log.Warn("capture: skipping corrupt frame", "seq", f.Seq, "format", f.Format.String(), "err", err)
						continue
					}
					return Frame{}, err
				}
				l.opts.Metrics.Decoded(time.Since(t0))
			}
			l.opts.Metrics.FrameOut()
			return f, nil
		}
		if l.err != nil {
			err := l.err
			l.mu.Unlock()
			return Frame{}, err
		}
		l.mu.Unlock()
		select {
		case <-l.notify:
		case <-ctx.Done():
			return Frame{}, ctx.Err()
		}
	}
}

// Close stops reading, waits for the reader goroutine and closes the
// source.
func (l *Latest) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	<-l.done
	l.wake()
	return l.src.Close()
}
