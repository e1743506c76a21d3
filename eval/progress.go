package eval

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Progress is a thin adapter over github.com/schollz/progressbar/v3 (the
// bar the bulk enrollment import draws too): a one-line progress bar on a
// terminal, silent when its writer is not one (a pipe, a file, a buffer),
// so logs and redirected output stay clean. It is safe for concurrent use;
// a nil *Progress does nothing.
type Progress struct {
	mu    sync.Mutex
	bar   *progressbar.ProgressBar
	ended bool
}

// NewProgress returns a progress bar for total steps labelled label,
// drawn on w only when w is a terminal (an *os.File on a character
// device).
func NewProgress(w io.Writer, label string, total int) *Progress {
	if !IsTerminal(w) {
		return &Progress{}
	}
	return newBar(w, label, total)
}

// newBar draws on w whatever it is.
func newBar(w io.Writer, label string, total int) *Progress {
	return &Progress{bar: progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(label),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprint(w, "\n") }),
	)}
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

// Add records n more steps done; the bar redraws at most every 100 ms.
func (p *Progress) Add(n int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil && !p.ended {
		_ = p.bar.Add(n) // a failed redraw of a progress bar is not worth an error
	}
}

// Done fills the bar and ends the line. Later calls do nothing.
func (p *Progress) Done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil && !p.ended {
		p.ended = true
		_ = p.bar.Finish()
	}
}
