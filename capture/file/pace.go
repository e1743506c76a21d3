package file

import (
	"context"
	"time"
)

// pacer releases frames at a fixed rate. A consumer that falls behind does
// not cause a burst afterwards: the schedule restarts from now.
type pacer struct {
	interval time.Duration // 0: no pacing
	next     time.Time
}

func newPacer(fps float64) *pacer {
	p := &pacer{}
	if fps > 0 {
		p.interval = time.Duration(float64(time.Second) / fps)
	}
	return p
}

// wait blocks until the next frame is due.
func (p *pacer) wait(ctx context.Context) error {
	if p.interval == 0 {
		return ctx.Err()
	}
	now := time.Now()
	if p.next.IsZero() || now.Sub(p.next) > p.interval {
		p.next = now
	}
	if d := p.next.Sub(now); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	p.next = p.next.Add(p.interval)
	return ctx.Err()
}
