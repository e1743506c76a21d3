package sdnotify

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Errors returned by Progress.Check, tested with errors.Is.
var (
	ErrNoFrames     = errors.New("no frames captured within the watchdog window")
	ErrNoInferences = errors.New("no inferences completed within the watchdog window")
)

// Progress counts pipeline progress for the watchdog health check: the
// capture loop calls Frame for every frame it receives and the inference
// loop calls Inference for every detector run (whether or not a face was
// found). Check passes only while both advanced within the window. All
// methods are safe for concurrent use and allocation free; Frame and
// Inference may be called per frame.
type Progress struct {
	window     time.Duration
	now        func() time.Time
	frames     atomic.Uint64
	inferences atomic.Uint64
	lastFrame  atomic.Int64 // unix nanoseconds
	lastInfer  atomic.Int64 // unix nanoseconds
}

// NewProgress returns counters whose Check requires both frames and
// inferences within window. now is the clock (nil: time.Now). The creation
// time counts as the last progress, which gives the pipeline one window to
// start.
func NewProgress(window time.Duration, now func() time.Time) *Progress {
	if now == nil {
		now = time.Now
	}
	p := &Progress{window: window, now: now}
	t := now().UnixNano()
	p.lastFrame.Store(t)
	p.lastInfer.Store(t)
	return p
}

// Frame records one captured frame.
func (p *Progress) Frame() {
	p.frames.Add(1)
	p.lastFrame.Store(p.now().UnixNano())
}

// Inference records one completed inference.
func (p *Progress) Inference() {
	p.inferences.Add(1)
	p.lastInfer.Store(p.now().UnixNano())
}

// Counts returns the totals so far (for status lines and metrics).
func (p *Progress) Counts() (frames, inferences uint64) {
	return p.frames.Load(), p.inferences.Load()
}

// Check returns nil when both a frame and an inference were recorded within
// the window before now, and otherwise an error wrapping ErrNoFrames or
// ErrNoInferences (both when both stalled). Use it as the Watchdog's health
// function.
func (p *Progress) Check() error {
	now := p.now().UnixNano()
	var errs []error
	if age := time.Duration(now - p.lastFrame.Load()); age > p.window {
		errs = append(errs, fmt.Errorf("%w (last %s ago, window %s)", ErrNoFrames, age.Round(time.Millisecond), p.window))
	}
	if age := time.Duration(now - p.lastInfer.Load()); age > p.window {
		errs = append(errs, fmt.Errorf("%w (last %s ago, window %s)", ErrNoInferences, age.Round(time.Millisecond), p.window))
	}
	return errors.Join(errs...)
}
