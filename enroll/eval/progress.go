package eval

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Progress draws a one-line progress bar on a terminal and stays silent
// when its writer is not one (a pipe, a file, a buffer), so logs and
// redirected output stay clean. It is safe for concurrent use.
type Progress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	label string
	total int
	done  int
	start time.Time
	last  time.Time
	now   func() time.Time
	ended bool
}

// progressEvery throttles redraws.
const progressEvery = 100 * time.Millisecond

// NewProgress returns a progress bar for total steps labelled label,
// drawn on w only when w is a terminal (an *os.File on a character
// device).
func NewProgress(w io.Writer, label string, total int) *Progress {
	return newProgress(w, label, total, IsTerminal(w), time.Now)
}

func newProgress(w io.Writer, label string, total int, tty bool, now func() time.Time) *Progress {
	t := now()
	return &Progress{w: w, tty: tty, label: label, total: total, start: t, now: now}
}

// IsTerminal reports whether w is an *os.File on a character device.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Add records n more steps done and redraws at most every 100 ms.
func (p *Progress) Add(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	if !p.tty || p.ended {
		return
	}
	if t := p.now(); p.done >= p.total || t.Sub(p.last) >= progressEvery {
		p.last = t
		p.draw(t)
	}
}

// Done draws the final state and ends the line. Later calls do nothing.
func (p *Progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.tty || p.ended {
		return
	}
	p.ended = true
	p.draw(p.now())
	fmt.Fprint(p.w, "\n")
}

const progressWidth = 30

func (p *Progress) draw(t time.Time) {
	frac := 1.0
	if p.total > 0 {
		frac = min(float64(p.done)/float64(p.total), 1)
	}
	fill := int(frac * progressWidth)
	bar := strings.Repeat("=", fill)
	if fill < progressWidth {
		bar += ">" + strings.Repeat(" ", progressWidth-fill-1)
	}
	elapsed := t.Sub(p.start)
	eta := "--"
	if p.done > 0 && p.done < p.total {
		eta = (time.Duration(float64(elapsed) * (1/frac - 1))).Round(time.Second).String()
	} else if p.done >= p.total {
		eta = "0s"
	}
	fmt.Fprintf(p.w, "\r%s [%s] %d/%d %3.0f%% eta %s\x1b[K", p.label, bar, p.done, p.total, 100*frac, eta)
}
