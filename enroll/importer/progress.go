package importer

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress is the import's progress bar: photos done, rate and ETA, drawn
// only on a terminal (a log file or a pipe stays clean). Only Run's
// collecting goroutine uses it.
type progress struct {
	bar *progressbar.ProgressBar
	w   io.Writer
}

func newProgress(w io.Writer, photos int) *progress {
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return &progress{}
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return &progress{}
	}
	return &progress{w: w, bar: progressbar.NewOptions(photos,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("import"),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("photos"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)}
}

func (p *progress) add(n int) {
	if p.bar != nil {
		_ = p.bar.Add(n) // a failed redraw is not worth an error
	}
}

func (p *progress) done() {
	if p.bar != nil && !p.bar.IsFinished() {
		_ = p.bar.Exit() // interrupted: keep the bar as it stands
		fmt.Fprintln(p.w)
	}
	p.bar = nil
}
