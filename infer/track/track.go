package track

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/facegate/facegate/infer/detect"
	"github.com/facegate/facegate/infer/imageio"
)

// Config sets when detections may be reused. The zero value disables
// tracking: every frame is detected.
type Config struct {
	// Threshold is the mean absolute difference, in BT.601 luma levels
	// (0..255), between a face's thumbnail now and at its detection below
	// which the detection may be reused. 0 disables tracking.
	Threshold float64
	// MaxFrames is the most consecutive frames that may reuse one
	// detection: the detector runs at least once every MaxFrames+1 frames.
	// At least 1 when tracking is enabled.
	MaxFrames int
	// MaxAge, when > 0, is the most time between the detection frame and a
	// frame that reuses it (frame capture times).
	MaxAge time.Duration
	// Size is the thumbnail's side in cells (0: DefaultSize).
	Size int
}

// Defaults and limits of Config.
const (
	DefaultSize  = 16
	MinSize      = 4
	MaxSize      = 64
	MaxMaxFrames = 1000
)

// DefaultConfig is the setting to use when tracking is switched on, chosen
// from `facegate bench -tracking` on real clips (docs/benchmarks.md,
// "Tracking: skipping detection"): 8 levels is the knee where skipping still
// grows but the tracked embedding's distance to a reference is not yet worse
// than the fresh one's on average; 5 frames instead of 15 halves the faces
// missed for under 1 % more time saved; 250 ms bounds the reuse at low frame
// rates. A daemon should still default to tracking off (the zero Config).
func DefaultConfig() Config {
	return Config{Threshold: 8, MaxFrames: 5, MaxAge: 250 * time.Millisecond, Size: DefaultSize}
}

// Enabled reports whether c reuses detections at all.
func (c Config) Enabled() bool { return c.Threshold > 0 }

// Validate rejects settings that make no sense; the zero value is valid
// (disabled).
func (c Config) Validate() error {
	var errs []error
	if math.IsNaN(c.Threshold) || c.Threshold < 0 || c.Threshold > 255 {
		errs = append(errs, fmt.Errorf("track: Threshold %v is not in 0..255 luma levels (0 disables tracking)", c.Threshold))
	}
	if c.MaxFrames < 0 || c.MaxFrames > MaxMaxFrames {
		errs = append(errs, fmt.Errorf("track: MaxFrames %d is not in 0..%d", c.MaxFrames, MaxMaxFrames))
	} else if c.Enabled() && c.MaxFrames < 1 {
		errs = append(errs, fmt.Errorf("track: MaxFrames must be at least 1 when tracking is enabled (Threshold %v)", c.Threshold))
	}
	if c.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("track: MaxAge %s is negative", c.MaxAge))
	}
	if c.Size != 0 && (c.Size < MinSize || c.Size > MaxSize) {
		errs = append(errs, fmt.Errorf("track: Size %d is not in %d..%d (0: %d)", c.Size, MinSize, MaxSize, DefaultSize))
	}
	return errors.Join(errs...)
}

// Reason says why Check did not reuse the detections ("" when it did).
type Reason string

// Reasons of a Decision.
const (
	Reused      Reason = ""
	Disabled    Reason = "disabled"     // Config.Threshold is 0
	NoFaces     Reason = "no-faces"     // nothing remembered, or the last detection found no face
	Untrackable Reason = "untrackable"  // a remembered box is smaller than the grid inside the frame, or not finite
	SizeChanged Reason = "size-changed" // the frame's size differs from the detection frame's
	MaxFrames   Reason = "max-frames"   // MaxFrames frames already reused these detections
	MaxAge      Reason = "max-age"      // the detections are MaxAge old, or from the future
	Moved       Reason = "moved"        // a face's thumbnail differs by Threshold or more
)

// Decision is Check's answer.
type Decision struct {
	Reuse  bool
	Reason Reason
	// Diff is the largest thumbnail difference (luma levels) among the faces
	// compared; Check stops at the first face at or over the threshold.
	// NaN when no thumbnail was compared.
	Diff float64
	// Reused counts the frames that reused the detections, this one included.
	Reused int
	// Age is the time from the detection frame to this one.
	Age time.Duration
}

// rect is a face box in whole pixels, clipped to the frame: [x0,x1)×[y0,y1).
type rect struct{ x0, y0, x1, y1 int }

// Tracker remembers one stream's last detections. Not safe for concurrent
// use.
type Tracker struct {
	cfg    Config
	n      int // thumbnail side
	dets   []detect.Detection
	rects  []rect
	thumbs []float32 // len(dets) thumbnails of n*n cells, back to back
	w, h   int
	at     time.Time
	reused int
	valid  bool // dets non-empty and every box trackable
	// untrackable: the last Update had a face box Check cannot compare.
	untrackable bool
	buf         []float32
}

// New returns a Tracker for a valid cfg.
func New(cfg Config) (*Tracker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Size == 0 {
		cfg.Size = DefaultSize
	}
	return &Tracker{cfg: cfg, n: cfg.Size, buf: make([]float32, cfg.Size*cfg.Size)}, nil
}

// Config returns the tracker's settings (Size filled in).
func (t *Tracker) Config() Config { return t.cfg }

// Update remembers the real detections of img, captured at now, and starts a
// new reuse count. Detections with no face, or with a box smaller than the
// thumbnail grid inside the frame, leave nothing to reuse. With tracking
// disabled it does nothing.
func (t *Tracker) Update(img *imageio.RGB, dets []detect.Detection, now time.Time) {
	t.Reset()
	if !t.cfg.Enabled() || len(dets) == 0 || img.Check() != nil {
		return
	}
	t.w, t.h, t.at = img.W, img.H, now
	t.dets = cloneDets(dets)
	nn := t.n * t.n
	t.thumbs = make([]float32, 0, len(dets)*nn)
	for _, d := range dets {
		r, ok := clip(d.Box, img.W, img.H, t.n)
		if !ok {
			t.Reset()
			t.untrackable = true
			return
		}
		t.rects = append(t.rects, r)
		t.thumbs = t.thumbs[:len(t.thumbs)+nn]
		thumbnail(img, r, t.n, t.thumbs[len(t.thumbs)-nn:])
	}
	t.valid = true
}

// Reset forgets the remembered detections: the next Check detects.
func (t *Tracker) Reset() {
	t.dets, t.rects, t.thumbs, t.valid, t.untrackable, t.reused = nil, nil, nil, false, false, 0
}

// Check decides whether img, captured at now, may reuse the remembered
// detections. On reuse it returns a copy of them (the caller may keep or
// change it) and counts the frame; otherwise nil, and the caller should
// detect and Update.
func (t *Tracker) Check(img *imageio.RGB, now time.Time) ([]detect.Detection, Decision) {
	d := Decision{Diff: math.NaN(), Reused: t.reused}
	switch {
	case !t.cfg.Enabled():
		d.Reason = Disabled
		return nil, d
	case t.untrackable:
		d.Reason = Untrackable
		return nil, d
	case !t.valid:
		d.Reason = NoFaces
		return nil, d
	case img.Check() != nil || img.W != t.w || img.H != t.h:
		d.Reason = SizeChanged
		return nil, d
	}
	d.Age = now.Sub(t.at)
	switch {
	case t.reused >= t.cfg.MaxFrames:
		d.Reason = MaxFrames
		return nil, d
	case t.cfg.MaxAge > 0 && (d.Age >= t.cfg.MaxAge || d.Age < 0):
		d.Reason = MaxAge
		return nil, d
	}
	nn := t.n * t.n
	d.Diff = 0
	for i, r := range t.rects {
		thumbnail(img, r, t.n, t.buf)
		diff := meanAbsDiff(t.buf, t.thumbs[i*nn:(i+1)*nn])
		d.Diff = max(d.Diff, diff)
		if !(diff < t.cfg.Threshold) {
			d.Reason = Moved
			return nil, d
		}
	}
	t.reused++
	d.Reuse, d.Reused = true, t.reused
	return cloneDets(t.dets), d
}

func cloneDets(dets []detect.Detection) []detect.Detection {
	out := make([]detect.Detection, len(dets))
	for i, d := range dets {
		out[i] = d
		out[i].Keypoints = append([]detect.Point(nil), d.Keypoints...)
	}
	return out
}

// clip rounds b outwards to whole pixels and clips it to a w×h frame; false
// when it is not finite or less than n pixels wide or high inside the frame.
func clip(b detect.Box, w, h, n int) (rect, bool) {
	for _, v := range []float64{b.X0, b.Y0, b.X1, b.Y1} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return rect{}, false
		}
	}
	c := func(v float64, hi int) int { return int(math.Max(0, math.Min(float64(hi), v))) }
	r := rect{c(math.Floor(b.X0), w), c(math.Floor(b.Y0), h), c(math.Ceil(b.X1), w), c(math.Ceil(b.Y1), h)}
	if r.x1-r.x0 < n || r.y1-r.y0 < n {
		return rect{}, false
	}
	return r, true
}

// maxSamples sets the sampling step of a cell side: side/maxSamples pixels
// (at least 1), so a side gets maxSamples to 2*maxSamples-1 samples, or
// every pixel when it is shorter.
const maxSamples = 8

// thumbnail writes into out (n*n) the mean BT.601 luma of each cell of an
// n×n grid over r, from evenly spaced pixels of each cell (see maxSamples).
// r is inside img and at least n pixels on each side.
func thumbnail(img *imageio.RGB, r rect, n int, out []float32) {
	w, h := r.x1-r.x0, r.y1-r.y0
	for cy := range n {
		y0, y1 := r.y0+cy*h/n, r.y0+(cy+1)*h/n
		sy := max(1, (y1-y0)/maxSamples)
		for cx := range n {
			x0, x1 := r.x0+cx*w/n, r.x0+(cx+1)*w/n
			sx := max(1, (x1-x0)/maxSamples)
			var sum, cnt uint32
			for y := y0; y < y1; y += sy {
				row := img.Pix[3*(y*img.W) : 3*(y*img.W+img.W)]
				for x := x0; x < x1; x += sx {
					p := row[3*x : 3*x+3 : 3*x+3]
					// BT.601 luma scaled by 256: 0.299, 0.587, 0.114.
					sum += 77*uint32(p[0]) + 150*uint32(p[1]) + 29*uint32(p[2])
					cnt++
				}
			}
			out[cy*n+cx] = float32(sum) / float32(256*cnt)
		}
	}
}

func meanAbsDiff(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += math.Abs(float64(a[i] - b[i]))
	}
	return s / float64(len(a))
}
