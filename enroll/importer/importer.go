package importer

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/facegate/facegate/daemon/mqtt"
)

// Gate executes enrollment requests. Do signs req (filling in its request
// id and Auth), sends it and returns the gate's reply; an error means no
// reply came (ErrNoReply, or ctx ended). Do is called from several
// goroutines at once.
type Gate interface {
	Do(ctx context.Context, req mqtt.EnrollRequest) (mqtt.EnrollReply, error)
}

// ErrNoReply is returned by a Gate when the gate did not answer in time.
var ErrNoReply = errors.New("no reply from the gate")

// ErrAborted is returned by Run when the gate refuses the importer itself
// (unauthorised: a wrong key or device): every row would be refused.
var ErrAborted = errors.New("import aborted")

// Options configure Run. Zero values take the defaults.
type Options struct {
	// Replace overwrites people enrolled from other photos (op replace);
	// without it they are refused as subject_exists.
	Replace bool
	// Force enrols past the gate's duplicate and conflict refusals (an
	// audit entry on the gate).
	Force bool
	// RetryRefused sends rows again that the gate refused on the earlier
	// run with the same photos.
	RetryRefused bool
	// Concurrency is the number of requests in flight (default 2).
	Concurrency int
	// Limits are the gate's photo limits (DefaultPhotoLimits).
	Limits PhotoLimits
	// Earlier are the previous run's refusals (ReadEarlier).
	Earlier Earlier
	// Report receives one JSON line per row and a summary line.
	Report io.Writer
	// Progress, when a terminal, shows a progress bar (photos, rate, ETA).
	Progress io.Writer
	// Busy bounds how long a row is retried while the gate answers busy
	// (default 5 min); Drain how long in-flight requests are waited for
	// after ctx ends (default 30 s); NoReplyTries how many requests a row
	// gets that are not answered in time (default 2).
	Busy         time.Duration
	Drain        time.Duration
	NoReplyTries int
	Log          *slog.Logger
}

func (o *Options) defaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = 2
	}
	if o.Busy <= 0 {
		o.Busy = 5 * time.Minute
	}
	if o.Drain <= 0 {
		o.Drain = 30 * time.Second
	}
	if o.NoReplyTries <= 0 {
		o.NoReplyTries = 2
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	o.Limits = o.Limits.withDefaults()
}

// sticky are the gate's refusals that depend only on the photos (and the
// gallery): sent again, the same photos get the same answer.
var sticky = map[mqtt.Code]bool{
	mqtt.CodeNoFace: true, mqtt.CodeSeveralFaces: true, mqtt.CodeLowQuality: true, mqtt.CodeBadFormat: true,
	mqtt.CodeTooLarge: true, mqtt.CodeDuplicate: true, mqtt.CodeConflict: true,
}

// Run imports rows (validated with Validate) into g: it lists the gallery
// once, then enrols each row that is not already enrolled from the same
// photos, Concurrency requests at a time, writing a report line per row.
// When ctx ends, no new row is started, requests in flight are waited for
// (up to Drain) and the summary counts the rows not attempted; a rerun
// finishes them. The error is nil unless the import could not run: the
// gallery could not be listed, the report could not be written, or the
// gate refused the importer's key (ErrAborted).
func Run(ctx context.Context, g Gate, rows []Row, o Options) (Summary, error) {
	o.defaults()
	start := time.Now()
	sum := Summary{Rows: len(rows)}
	rep := newReportWriter(o.Report)

	enrolled, err := listPhotos(ctx, g)
	if err != nil {
		return sum, err
	}
	total := 0
	for _, r := range rows {
		total += len(r.Photos)
	}
	bar := newProgress(o.Progress, total)
	defer bar.done()

	// Requests in flight outlive ctx by up to Drain, so that their replies
	// are recorded.
	sendCtx, stopSends := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSends()
	go func() {
		select {
		case <-ctx.Done():
		case <-sendCtx.Done():
			return
		}
		t := time.NewTimer(o.Drain)
		defer t.Stop()
		select {
		case <-t.C:
			stopSends()
		case <-sendCtx.Done():
		}
	}()
	abortCtx, abort := context.WithCancelCause(ctx)
	defer abort(nil)

	im := &run{g: g, o: o, enrolled: enrolled, sendCtx: sendCtx, abortCtx: abortCtx}
	next := make(chan int)
	results := make(chan Result)
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if r, ok := im.row(rows[i]); ok {
					results <- r
				}
			}
		}()
	}
	go func() {
		defer close(next)
		for i := range rows {
			select {
			case next <- i:
			case <-abortCtx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()

	var werr error
	done := 0
	for r := range results {
		done++
		sum.add(r)
		if r.Op != "" {
			sum.Sent++
			sum.Photos += len(r.SHA256)
		}
		if r.Status == Refused && r.Code == string(mqtt.CodeUnauthorised) {
			abort(fmt.Errorf("%w: the gate answered unauthorised (wrong key, or -device names another gate)", ErrAborted))
		}
		if werr == nil {
			werr = rep.write(r)
			if werr != nil {
				abort(werr)
			}
		}
		bar.add(len(r.Photos))
	}
	sum.NotAttempted = len(rows) - done
	sum.Interrupted = sum.NotAttempted > 0 || ctx.Err() != nil
	sum.Seconds = time.Since(start).Seconds()
	if sum.Seconds > 0 {
		sum.PhotosPerSecond = float64(sum.Photos) / sum.Seconds
	}
	if werr == nil {
		werr = rep.write(summaryLine{Summary: sum, Time: time.Now().UTC()})
	}
	if c := context.Cause(abortCtx); c != nil && ctx.Err() == nil {
		return sum, c
	}
	return sum, werr
}

// listPhotos lists the gallery: each enrolled person's photo hashes.
func listPhotos(ctx context.Context, g Gate) (map[string][]string, error) {
	rep, err := g.Do(ctx, mqtt.EnrollRequest{Op: mqtt.OpList})
	if err != nil {
		return nil, fmt.Errorf("list the gallery: %w", err)
	}
	if rep.Status != mqtt.ReplyOK {
		return nil, fmt.Errorf("list the gallery: the gate refused: %s: %s", rep.Code, rep.Message)
	}
	out := make(map[string][]string, len(rep.People))
	for _, p := range rep.People {
		out[p.ID] = append([]string{}, p.Photos...)
	}
	return out, nil
}

// run is one import's shared state.
type run struct {
	g        Gate
	o        Options
	enrolled map[string][]string // read-only after listPhotos
	sendCtx  context.Context
	abortCtx context.Context
}

// samePhotos reports whether two sets of photo hashes are equal.
func samePhotos(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// row imports one row and says what happened; false when the import was
// interrupted before the row was started.
func (im *run) row(r Row) (Result, bool) {
	if im.abortCtx.Err() != nil {
		return Result{}, false
	}
	return im.do(r), true
}

func (im *run) do(r Row) (res Result) {
	start := time.Now()
	res = Result{Row: r}
	defer func() { res.MS = float64(time.Since(start).Microseconds()) / 1000 }()
	refuse := func(code, reason, photo string) Result {
		res.Status, res.Code, res.Reason, res.Photo = Refused, code, reason, photo
		return res
	}
	if r.bad != nil {
		return refuse(r.bad.code, r.bad.reason, r.bad.photo)
	}
	photos, warnings, bad := loadPhotos(r.Photos, im.o.Limits)
	if bad != nil {
		return refuse(bad.code, bad.reason, bad.photo)
	}
	res.Warnings = warnings
	for _, p := range photos {
		res.SHA256 = append(res.SHA256, p.sha256)
	}
	op := mqtt.OpAdd
	if have, ok := im.enrolled[r.ID]; ok {
		switch {
		case samePhotos(have, res.SHA256):
			res.Status, res.Reason = Skipped, "already enrolled from the same photos"
			return res
		case !im.o.Replace:
			return refuse(CodeSubjectExists, fmt.Sprintf("%s is enrolled from other photos (%d): -replace overwrites them", r.ID, len(have)), "")
		}
		op = mqtt.OpReplace
	}
	if e, ok := im.o.Earlier[r.ID]; ok && !im.o.RetryRefused && samePhotos(e.SHA256, res.SHA256) {
		res.Status, res.Code, res.Photo, res.ConflictWith = Refused, e.Code, e.Photo, e.ConflictWith
		res.Reason, res.FromGate, res.Earlier = e.Reason, true, true
		return res
	}
	req := mqtt.EnrollRequest{Op: op, SubjectID: r.ID, Name: r.Name, Force: im.o.Force}
	for _, p := range photos {
		req.Images = append(req.Images, base64.StdEncoding.EncodeToString(p.data))
	}
	res.Op = string(op)
	rep, err := im.send(req, &res.Attempts)
	switch {
	case err != nil:
		res.Status, res.Reason = Unknown, err.Error()+": rerun the import to finish this row"
		return res
	case rep.Status == mqtt.ReplyOK:
		res.Status, res.Templates = Enrolled, rep.Templates
		res.Warnings = append(res.Warnings, rep.Warnings...)
		if len(res.Warnings) > 0 {
			res.Status = Warning
		}
		return res
	case rep.Code == mqtt.CodeSubjectExists && op == mqtt.OpAdd:
		// Enrolled meanwhile: by an earlier request of this row that was
		// not answered in time, or by someone else. The photos say which.
		if same, err := im.enrolledFrom(r.ID, res.SHA256); err == nil && same {
			res.Status, res.Reason = Skipped, "already enrolled from the same photos"
			if res.Attempts > 1 {
				res.Status, res.Reason = Enrolled, "enrolled by an earlier request of this row"
			}
			return res
		}
	}
	res = refuse(string(rep.Code), rep.Message, "")
	res.FromGate, res.ConflictWith = true, rep.ConflictWith
	if rep.ImageIndex != nil && *rep.ImageIndex >= 0 && *rep.ImageIndex < len(photos) {
		res.Photo = photos[*rep.ImageIndex].path
		res.Reason = photos[*rep.ImageIndex].path + ": " + rep.Message
	}
	if !sticky[rep.Code] {
		res.FromGate = false // busy, internal, ...: worth sending again
	}
	return res
}

// send sends req until the gate answers something other than busy (within
// Options.Busy) or NoReplyTries requests went unanswered. It gives up
// retrying when the import is interrupted; a request already sent is
// waited for until the drain ends.
func (im *run) send(req mqtt.EnrollRequest, attempts *int) (mqtt.EnrollReply, error) {
	busyUntil := time.Now().Add(im.o.Busy)
	backoff := 250 * time.Millisecond
	noReply := 0
	for {
		*attempts++
		rep, err := im.g.Do(im.sendCtx, req)
		switch {
		case err != nil:
			noReply++
			if noReply >= im.o.NoReplyTries || im.abortCtx.Err() != nil {
				return mqtt.EnrollReply{}, err
			}
			im.o.Log.Warn("no reply from the gate; sending again", "subject", req.SubjectID, "err", err)
			continue
		case rep.Code != mqtt.CodeBusy:
			return rep, nil
		case time.Now().After(busyUntil):
			rep.Message = fmt.Sprintf("the gate stayed busy for %s: %s", im.o.Busy, rep.Message)
			return rep, nil
		}
		// Busy: nothing was done; wait (with jitter) and send again.
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, 8*time.Second)
		select {
		case <-time.After(wait):
		case <-im.abortCtx.Done():
			rep.Message = "interrupted while the gate was busy: " + rep.Message
			return rep, nil
		}
	}
}

// enrolledFrom asks the gate whether id is enrolled from exactly these
// photos (op get).
func (im *run) enrolledFrom(id string, sha []string) (bool, error) {
	rep, err := im.g.Do(im.sendCtx, mqtt.EnrollRequest{Op: mqtt.OpGet, SubjectID: id})
	if err != nil || rep.Status != mqtt.ReplyOK || rep.Person == nil {
		return false, fmt.Errorf("get %s: %v %s", id, err, rep.Message)
	}
	var have []string
	for _, p := range rep.Person.Photos {
		have = append(have, p.SHA256)
	}
	return samePhotos(have, sha), nil
}
