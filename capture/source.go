package capture

import (
	"context"
	"errors"
)

// Source produces frames. Next blocks until the next frame is available,
// ctx is done, or the source ends (io.EOF for files without looping). A
// Source is driven by one goroutine: Next and Close must not be called
// concurrently (Latest does this for you).
//
// Sources count FrameIn, Corrupt, Timeout, Outage and Reconnected in the
// *Metrics they were built with; they skip what they can and return an
// error only when they cannot go on.
type Source interface {
	Next(ctx context.Context) (Frame, error)
	Close() error
}

// ErrClosed is returned by Next after Close.
var ErrClosed = errors.New("capture: source closed")
