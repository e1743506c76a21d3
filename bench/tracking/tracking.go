package tracking

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/facegate/facegate/bench"
	"github.com/facegate/facegate/capture"
	"github.com/facegate/facegate/capture/file"
	"github.com/facegate/facegate/enroll"
	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/detect"
	"github.com/facegate/facegate/infer/imageio"
	"github.com/facegate/facegate/infer/manifest"
	"github.com/facegate/facegate/infer/track"
)

// Config is one tracking sweep over clips.
type Config struct {
	// Pipeline is the open detector and embedder; the caller closes it.
	Pipeline *infer.Pipeline
	// Clips are video files (read by ffmpeg) or folders of images,
	// optionally with @WxH+X+Y to crop each (scaled) frame.
	Clips []string
	// Thresholds and MaxFrames are the tracker settings swept (every
	// pair); Size is the thumbnail side in cells.
	Thresholds []float64
	MaxFrames  []int
	Size       int
	ClipFrames int // at most this many frames of each clip (0: all)
	// MaxWidth and MaxHeight bound the frames ffmpeg decodes (0: no limit).
	MaxWidth, MaxHeight int
	// RefFrames: the reference template is the mean fresh embedding of the
	// first RefFrames frames with a face.
	RefFrames int
	// FMR picks the model's calibrated threshold that decisions use.
	FMR float64
	// Threads, Inter and Pad are the pipeline's settings, for the report.
	Threads, Inter int
	Pad            float64
	Build          bench.Build
}

// Validate checks the sweep before any model or clip opens.
func (cfg Config) Validate() error {
	if len(cfg.Clips) == 0 {
		return fmt.Errorf("%w: tracking needs at least one clip", bench.ErrConfig)
	}
	if cfg.RefFrames < 1 || cfg.ClipFrames < 0 {
		return fmt.Errorf("%w: tracking needs reference frames ≥ 1 and clip frames ≥ 0", bench.ErrConfig)
	}
	if len(cfg.Thresholds) == 0 || len(cfg.MaxFrames) == 0 {
		return fmt.Errorf("%w: tracking needs thresholds and max frames to sweep", bench.ErrConfig)
	}
	for _, th := range cfg.Thresholds {
		if !(th > 0) {
			return fmt.Errorf("%w: tracker threshold %g is not positive", bench.ErrConfig, th)
		}
		for _, mf := range cfg.MaxFrames {
			if err := (track.Config{Threshold: th, MaxFrames: mf, Size: cfg.Size}).Validate(); err != nil {
				return fmt.Errorf("%w: %v", bench.ErrConfig, err)
			}
		}
	}
	for _, c := range cfg.Clips {
		if _, _, err := clipCrop(c); err != nil {
			return err
		}
	}
	return nil
}

// Report is the JSON of -tracking.
type Report struct {
	Kind      string             `json:"kind"`
	Machine   bench.Machine      `json:"machine"`
	Detector  string             `json:"detector"`
	Embedder  string             `json:"embedder"`
	Threads   int                `json:"intra_op_threads"`
	Inter     int                `json:"inter_op_threads"`
	PadRetry  float64            `json:"pad_retry"`
	Threshold manifest.Threshold `json:"decision_threshold"`
	RefFrames int                `json:"ref_frames"`
	MaxWidth  int                `json:"clip_max_width"`
	MaxHeight int                `json:"clip_max_height"`
	Size      int                `json:"thumbnail_size"`
	Clips     []Clip             `json:"clips"`
	// Pooled sums each setting's counts and times over all clips.
	Pooled   []Result `json:"pooled"`
	RunWallS float64  `json:"run_wall_s"`
}

// Clip is one clip's figures.
type Clip struct {
	Clip           string `json:"clip"`
	Crop           string `json:"crop,omitempty"` // WxH+X+Y of the decoded frame
	Frames         int    `json:"frames"`
	Width          int    `json:"width"`
	Height         int    `json:"height"`
	FramesWithFace int    `json:"frames_with_face"`
	Faces          int    `json:"faces_detected"`
	// RefFrames is how many fresh embeddings the reference template
	// averages; RefFrame the first of them.
	RefFrames int `json:"ref_frames"`
	RefFrame  int `json:"ref_first_frame"`
	// FreshWall and FreshCPU are ms per frame of the fresh path, by stage
	// ("detect" on every frame, "embed" on frames with a face, "total").
	FreshWall map[string]bench.Stats `json:"fresh_wall_ms"`
	FreshCPU  map[string]bench.Stats `json:"fresh_cpu_ms"`
	// Jitter is the distance between the fresh embeddings of consecutive
	// frames that both have a face: how much the embedding moves anyway.
	Jitter bench.Stats `json:"fresh_consecutive_distance"`
	// FreshAccepted counts frames whose fresh embedding is within the
	// decision threshold of the reference.
	FreshAccepted int `json:"fresh_accepted"`
	// FreshFlips counts consecutive frames (both with a face) whose fresh
	// decisions differ: the decision noise of the fresh path itself.
	FreshFlips int      `json:"fresh_consecutive_flips"`
	Results    []Result `json:"settings"`
}

// Result is one tracker setting on one clip (or pooled).
type Result struct {
	Threshold float64 `json:"threshold"`
	MaxFrames int     `json:"max_frames"`
	Frames    int     `json:"frames"`
	Skipped   int     `json:"skipped"`
	SkipFrac  float64 `json:"skipped_fraction"`
	// Detected counts why the tracked path ran the detector (track.Reason).
	Detected map[string]int `json:"detected_because"`
	// Distance is the Euclidean distance between the tracked and fresh
	// embeddings on skipped frames where both paths have a face.
	Distance bench.Stats `json:"distance_tracked_fresh"`
	// DistanceSame is Distance on the skipped frames whose reused largest
	// box is the fresh largest face (IoU ≥ 0.5): the cost of the reused
	// keypoints alone, without detector flicker between faces.
	DistanceSame bench.Stats `json:"distance_tracked_fresh_same_face"`
	// RefDelta is, on those frames, the tracked embedding's distance to the
	// reference minus the fresh one's (> 0: tracking moves the face away
	// from the reference).
	RefDelta bench.Stats `json:"ref_distance_delta_same_face"`
	// Flips: skipped frames where "distance to the reference ≤ threshold"
	// differs between the two paths (both with a face); FlipsSame those of
	// them on same-face frames.
	Flips        int `json:"decision_flips"`
	FlipsSame    int `json:"decision_flips_same_face"`
	FlipAccepts  int `json:"flips_tracked_accepts"` // tracked accepts, fresh rejects
	FlipRejects  int `json:"flips_tracked_rejects"` // tracked rejects, fresh accepts
	FreshNoFace  int `json:"skipped_fresh_no_face"` // skipped frames where the fresh path found no face
	MissedFaces  int `json:"missed_faces"`          // fresh faces with no reused box at IoU ≥ 0.5
	MissedFrames int `json:"missed_frames"`
	AddedFaces   int `json:"added_faces"` // reused boxes with no fresh face at IoU ≥ 0.5
	AddedFrames  int `json:"added_frames"`
	// PrimaryChanged: skipped frames whose reused largest box does not
	// overlap the fresh largest face at IoU ≥ 0.5 (another face became the
	// subject).
	PrimaryChanged int         `json:"primary_changed"`
	PrimaryIoU     bench.Stats `json:"primary_iou"`
	CheckUS        bench.Stats `json:"check_us"`
	FreshMS        float64     `json:"fresh_wall_ms_per_frame"`
	TrackedMS      float64     `json:"tracked_wall_ms_per_frame"`
	SavedPct       float64     `json:"saved_wall_pct"`
	FreshCPUMS     float64     `json:"fresh_cpu_ms_per_frame"`
	TrackedCPUMS   float64     `json:"tracked_cpu_ms_per_frame"`
	SavedCPUPct    float64     `json:"saved_cpu_pct"`

	dist, distSame, iou, check []float64   // samples behind Distance, DistanceSame, PrimaryIoU, CheckUS
	delta                      []float64   // samples behind RefDelta
	trackedEmb                 [][]float32 // per frame: the tracked path's embedding
	sameFace                   []bool      // per frame: skipped, and the same largest face as fresh
	// Sums of ms per frame (wall, CPU) of the fresh and tracked paths.
	sumFresh, sumTracked, sumFreshC, sumTrC float64
}

// trackState is one setting's tracker during a clip.
type trackState struct {
	tr  *track.Tracker
	src int // frame whose detections the tracker holds
	res *Result
}

// embResult is a tracked embedding of one frame.
type embResult struct {
	emb       []float32
	box       detect.Box // the reused largest box
	wall, cpu float64    // align+embed ms
}

func (cfg Config) Run(ctx context.Context, stdout io.Writer) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Pipeline == nil {
		return nil, fmt.Errorf("%w: tracking needs a pipeline", bench.ErrConfig)
	}
	p := cfg.Pipeline
	man := p.Emb.Model().Manifest()
	sc, err := enroll.NewScorer(man)
	if err != nil {
		return nil, err
	}
	thr, ok := man.ThresholdFor(cfg.FMR, string(man.Metric))
	if !ok {
		return nil, fmt.Errorf("model %s has no calibrated %s threshold for FMR %g", man.Name, man.Metric, cfg.FMR)
	}
	rep := &Report{Kind: "tracking", Machine: bench.NewMachine(cfg.Build), Detector: p.Det.Model().Manifest().Name, Embedder: man.Name,
		Threads: cfg.Threads, Inter: cfg.Inter, PadRetry: cfg.Pad, Threshold: thr, RefFrames: cfg.RefFrames,
		MaxWidth: cfg.MaxWidth, MaxHeight: cfg.MaxHeight, Size: cfg.Size}
	fmt.Fprintf(stdout, "facegate bench -tracking: %s + %s, intra-op threads %d, pad-retry %.2f; decisions at %s ≤ %.4f (FMR %g) against the mean of the first %d fresh embeddings; thumbnails %dx%d\n",
		rep.Detector, rep.Embedder, cfg.Threads, cfg.Pad, thr.Score, thr.Value, thr.FMR, cfg.RefFrames, cfg.Size, cfg.Size)
	start := time.Now()
	for _, clip := range cfg.Clips {
		c, err := cfg.clip(ctx, p, sc, thr, clip)
		if err != nil {
			return nil, fmt.Errorf("clip %s: %w", clip, err)
		}
		rep.Clips = append(rep.Clips, *c)
		printClip(stdout, c)
	}
	rep.Pooled = pool(rep.Clips)
	rep.RunWallS = bench.Round3(time.Since(start).Seconds())
	rep.Machine.Finish()
	if len(rep.Clips) > 1 {
		fmt.Fprintf(stdout, "\nall clips pooled (%d frames):\n", rep.Pooled[0].Frames)
		printResults(stdout, rep.Pooled)
	}
	fmt.Fprintf(stdout, "run %.1f s; machine: %s\n", rep.RunWallS, rep.Machine.Describe())
	return rep, nil
}

// clipCrop splits "PATH@WxH+X+Y" into the path and the crop rectangle (empty
// without a suffix).
func clipCrop(clip string) (string, image.Rectangle, error) {
	i := strings.LastIndex(clip, "@")
	if i < 0 {
		return clip, image.Rectangle{}, nil
	}
	var w, h, x, y int
	if _, err := fmt.Sscanf(clip[i+1:], "%dx%d+%d+%d", &w, &h, &x, &y); err != nil || w <= 0 || h <= 0 || x < 0 || y < 0 {
		return "", image.Rectangle{}, fmt.Errorf("%w: clip %q: crop is not WxH+X+Y", bench.ErrConfig, clip)
	}
	return clip[:i], image.Rect(x, y, x+w, y+h), nil
}

// openClip opens a video file with ffmpeg or a folder of images, unpaced.
func (cfg Config) openClip(path string) (interface {
	Next(context.Context) (capture.Frame, error)
	Close() error
}, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	opts := file.Options{FPS: capture.FPSMax}
	if st.IsDir() {
		return file.OpenDir(path, opts)
	}
	return file.OpenFFmpeg(path, file.FFmpegOptions{Options: opts, MaxWidth: cfg.MaxWidth, MaxHeight: cfg.MaxHeight})
}

func largestDet(dets []detect.Detection) int {
	best := -1
	for i := range dets {
		if best < 0 || dets[i].Box.Area() > dets[best].Box.Area() {
			best = i
		}
	}
	return best
}

// unmatched counts the boxes of a with no box of b at IoU ≥ 0.5.
func unmatched(a, b []detect.Box) int {
	n := 0
	for _, x := range a {
		found := false
		for _, y := range b {
			if detect.IoU(x, y) >= 0.5 {
				found = true
				break
			}
		}
		if !found {
			n++
		}
	}
	return n
}

func (cfg Config) clip(ctx context.Context, p *infer.Pipeline, sc enroll.Scorer, thr manifest.Threshold, clip string) (*Clip, error) {
	path, crop, err := clipCrop(clip)
	if err != nil {
		return nil, err
	}
	src, err := cfg.openClip(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	names := p.Det.KeypointNames()
	var states []*trackState
	for _, th := range cfg.Thresholds {
		for _, mf := range cfg.MaxFrames {
			tr, err := track.New(track.Config{Threshold: th, MaxFrames: mf, Size: cfg.Size})
			if err != nil {
				return nil, err
			}
			states = append(states, &trackState{tr: tr, src: -1, res: &Result{Threshold: th, MaxFrames: mf, Detected: map[string]int{}}})
		}
	}
	c := &Clip{Clip: filepath.Base(clip), RefFrame: -1}
	if !crop.Empty() {
		c.Crop = fmt.Sprintf("%dx%d+%d+%d", crop.Dx(), crop.Dy(), crop.Min.X, crop.Min.Y)
	}
	wall := map[string][]float64{}
	cpu := map[string][]float64{}
	var fresh [][]float32 // per frame, nil without a face
	t0 := time.Unix(0, 0)
	embedFace := func(img *imageio.RGB, f *infer.Face) (emb []float32, w, cp float64, err error) {
		w0, c0 := time.Now(), bench.CPUTime()
		if err := p.Embed(img, []*infer.Face{f}); err != nil {
			return nil, 0, 0, err
		}
		return f.Embedding, bench.MS(time.Since(w0)), bench.MS(bench.CPUTime() - c0), nil
	}
	for i := 0; cfg.ClipFrames == 0 || i < cfg.ClipFrames; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fr, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		rgb, err := fr.RGB()
		if err != nil {
			return nil, fmt.Errorf("frame %d: %w", i, err)
		}
		img := &imageio.RGB{W: rgb.W, H: rgb.H, Pix: rgb.Packed()}
		if !crop.Empty() {
			if !crop.In(img.Bounds()) {
				return nil, fmt.Errorf("%w: crop %v is not inside the %dx%d frame", bench.ErrConfig, crop, img.W, img.H)
			}
			img = img.Crop(crop)
		}
		if i == 0 {
			// Warm-up: TensorFlow's first runs allocate and pick kernels.
			if _, err := p.EmbedPrimary(img); err != nil && !errors.Is(err, infer.ErrNoFace) {
				return nil, fmt.Errorf("warm-up: %w", err)
			}
			c.Width, c.Height = img.W, img.H
		}
		c.Frames++
		// The sweep bounds reuse by frames only (MaxAge 0): clips are read
		// as fast as possible, so their wall-clock times mean nothing; this
		// clock only keeps Check's inputs well-formed.
		now := t0.Add(time.Duration(i) * 40 * time.Millisecond)

		// Fresh path.
		w0, c0 := time.Now(), bench.CPUTime()
		faces, err := p.Detect(img)
		if err != nil {
			return nil, fmt.Errorf("frame %d: %w", i, err)
		}
		detW, detC := bench.MS(time.Since(w0)), bench.MS(bench.CPUTime()-c0)
		wall["detect"] = append(wall["detect"], detW)
		cpu["detect"] = append(cpu["detect"], detC)
		c.Faces += len(faces)
		freshBoxes := make([]detect.Box, len(faces))
		dets := make([]detect.Detection, len(faces))
		for k := range faces {
			freshBoxes[k], dets[k] = faces[k].Box, faces[k].Detection
		}
		var freshEmb []float32
		var embW, embC float64
		prim := infer.Largest(faces) // as the daemon picks it
		if prim != nil {
			c.FramesWithFace++
			if freshEmb, embW, embC, err = embedFace(img, prim); err != nil {
				return nil, fmt.Errorf("frame %d: %w", i, err)
			}
			wall["embed"] = append(wall["embed"], embW)
			cpu["embed"] = append(cpu["embed"], embC)
		}
		wall["total"] = append(wall["total"], detW+embW)
		cpu["total"] = append(cpu["total"], detC+embC)
		fresh = append(fresh, freshEmb)

		// Tracked paths: embeddings of reused detections, by source frame
		// (settings holding the same detections compute the same chip).
		cache := map[int]embResult{}
		for _, st := range states {
			r := st.res
			r.Frames++
			r.sumFresh += detW + embW
			r.sumFreshC += detC + embC
			cw := time.Now()
			got, d := st.tr.Check(img, now)
			checkMS := bench.MS(time.Since(cw))
			r.check = append(r.check, checkMS*1000)
			if !d.Reuse {
				r.Detected[string(d.Reason)]++
				uw := time.Now()
				st.tr.Update(img, dets, now)
				upd := bench.MS(time.Since(uw))
				st.src = i
				r.sumTracked += checkMS + detW + embW + upd
				r.sumTrC += checkMS + detC + embC + upd
				r.trackedEmb = append(r.trackedEmb, freshEmb)
				r.sameFace = append(r.sameFace, false)
				continue
			}
			r.Skipped++
			e, ok := cache[st.src]
			if !ok {
				k := largestDet(got)
				f := &infer.Face{Detection: got[k], Names: names}
				e.box = got[k].Box
				if e.emb, e.wall, e.cpu, err = embedFace(img, f); err != nil {
					return nil, fmt.Errorf("frame %d, tracked: %w", i, err)
				}
				cache[st.src] = e
			}
			r.sumTracked += checkMS + e.wall
			r.sumTrC += checkMS + e.cpu
			r.trackedEmb = append(r.trackedEmb, e.emb)
			r.sameFace = append(r.sameFace, false)
			reused := make([]detect.Box, len(got))
			for k := range got {
				reused[k] = got[k].Box
			}
			if m := unmatched(freshBoxes, reused); m > 0 {
				r.MissedFaces += m
				r.MissedFrames++
			}
			if a := unmatched(reused, freshBoxes); a > 0 {
				r.AddedFaces += a
				r.AddedFrames++
			}
			if freshEmb == nil {
				r.FreshNoFace++
				continue
			}
			iou := detect.IoU(prim.Box, e.box)
			r.iou = append(r.iou, iou)
			dist := sc.Compare(freshEmb, e.emb).Distance
			r.dist = append(r.dist, dist)
			if iou < 0.5 {
				r.PrimaryChanged++
			} else {
				r.distSame = append(r.distSame, dist)
				r.sameFace[len(r.sameFace)-1] = true
			}
		}
	}
	if c.Frames == 0 {
		return nil, errors.New("no frames")
	}
	c.FreshWall, c.FreshCPU = map[string]bench.Stats{}, map[string]bench.Stats{}
	for _, s := range []string{"detect", "embed", "total"} {
		c.FreshWall[s], c.FreshCPU[s] = bench.StatsOf(wall[s]), bench.StatsOf(cpu[s])
	}
	// The reference: mean of the first RefFrames fresh embeddings.
	ref := make([]float32, sc.Dim)
	for i, e := range fresh {
		if e == nil || c.RefFrames == cfg.RefFrames {
			continue
		}
		if c.RefFrame < 0 {
			c.RefFrame = i
		}
		for k, v := range e {
			ref[k] += v
		}
		c.RefFrames++
	}
	var jitter []float64
	for i := 1; i < len(fresh); i++ {
		if fresh[i] != nil && fresh[i-1] != nil {
			jitter = append(jitter, sc.Compare(fresh[i], fresh[i-1]).Distance)
		}
	}
	c.Jitter = bench.StatsOf(jitter)
	haveRef := c.RefFrames > 0
	if haveRef {
		enroll.Normalize(ref)
	}
	accepts := func(e []float32) bool { return enroll.Accepts(sc.Compare(e, ref), thr) }
	if haveRef {
		for i, e := range fresh {
			if e == nil {
				continue
			}
			if accepts(e) {
				c.FreshAccepted++
			}
			if i > 0 && fresh[i-1] != nil && accepts(e) != accepts(fresh[i-1]) {
				c.FreshFlips++
			}
		}
	}
	for _, st := range states {
		r := st.res
		if haveRef {
			for i, e := range r.trackedEmb {
				if e == nil || fresh[i] == nil {
					continue
				}
				fa, ta := accepts(fresh[i]), accepts(e)
				switch {
				case ta && !fa:
					r.Flips++
					r.FlipAccepts++
				case fa && !ta:
					r.Flips++
					r.FlipRejects++
				}
				if r.sameFace[i] {
					if ta != fa {
						r.FlipsSame++
					}
					r.delta = append(r.delta, sc.Compare(e, ref).Distance-sc.Compare(fresh[i], ref).Distance)
				}
			}
		}
		r.finish()
		c.Results = append(c.Results, *r)
	}
	return c, nil
}

// finish turns the sums and samples into the reported figures.
func (r *Result) finish() {
	r.SkipFrac = bench.Round3(float64(r.Skipped) / float64(max(r.Frames, 1)))
	r.Distance, r.PrimaryIoU, r.CheckUS = bench.StatsOf(r.dist), bench.StatsOf(r.iou), bench.StatsOf(r.check)
	r.DistanceSame, r.RefDelta = bench.StatsOf(r.distSame), bench.StatsOf(r.delta)
	n := float64(max(r.Frames, 1))
	r.FreshMS, r.TrackedMS = bench.Round3(r.sumFresh/n), bench.Round3(r.sumTracked/n)
	r.FreshCPUMS, r.TrackedCPUMS = bench.Round3(r.sumFreshC/n), bench.Round3(r.sumTrC/n)
	if r.sumFresh > 0 {
		r.SavedPct = bench.Round3(100 * (1 - r.sumTracked/r.sumFresh))
	}
	if r.sumFreshC > 0 {
		r.SavedCPUPct = bench.Round3(100 * (1 - r.sumTrC/r.sumFreshC))
	}
	r.trackedEmb, r.sameFace = nil, nil
}

// poolTrack sums each setting over the clips.
func pool(clips []Clip) []Result {
	if len(clips) == 0 {
		return nil
	}
	out := make([]Result, len(clips[0].Results))
	for i := range out {
		p := &out[i]
		p.Threshold, p.MaxFrames, p.Detected = clips[0].Results[i].Threshold, clips[0].Results[i].MaxFrames, map[string]int{}
		for _, c := range clips {
			r := &c.Results[i]
			p.Frames += r.Frames
			p.Skipped += r.Skipped
			for k, v := range r.Detected {
				p.Detected[k] += v
			}
			p.Flips += r.Flips
			p.FlipsSame += r.FlipsSame
			p.distSame = append(p.distSame, r.distSame...)
			p.delta = append(p.delta, r.delta...)
			p.FlipAccepts += r.FlipAccepts
			p.FlipRejects += r.FlipRejects
			p.FreshNoFace += r.FreshNoFace
			p.MissedFaces += r.MissedFaces
			p.MissedFrames += r.MissedFrames
			p.AddedFaces += r.AddedFaces
			p.AddedFrames += r.AddedFrames
			p.PrimaryChanged += r.PrimaryChanged
			p.dist = append(p.dist, r.dist...)
			p.iou = append(p.iou, r.iou...)
			p.check = append(p.check, r.check...)
			p.sumFresh += r.sumFresh
			p.sumTracked += r.sumTracked
			p.sumFreshC += r.sumFreshC
			p.sumTrC += r.sumTrC
		}
		p.finish()
	}
	return out
}

func printClip(w io.Writer, c *Clip) {
	fw, fc := c.FreshWall, c.FreshCPU
	fmt.Fprintf(w, "\n%s: %d frames %dx%d, %d with a face (%d faces detected); fresh path wall ms/frame: detect %.2f, embed %.2f (frames with a face), total %.2f; CPU: detect %.2f, embed %.2f, total %.2f\n",
		c.Clip, c.Frames, c.Width, c.Height, c.FramesWithFace, c.Faces, fw["detect"].Mean, fw["embed"].Mean, fw["total"].Mean,
		fc["detect"].Mean, fc["embed"].Mean, fc["total"].Mean)
	fmt.Fprintf(w, "reference: mean of %d fresh embeddings from frame %d; fresh accepted on %d of %d frames with a face; fresh path between consecutive frames: distance mean %.4f p95 %.4f max %.4f, %d decision changes in %d pairs\n",
		c.RefFrames, c.RefFrame, c.FreshAccepted, c.FramesWithFace, c.Jitter.Mean, c.Jitter.P95, c.Jitter.Max, c.FreshFlips, c.Jitter.N)
	printResults(w, c.Results)
}

// printResults prints a Markdown table, one row per setting.
func printResults(w io.Writer, rs []Result) {
	fmt.Fprintln(w, "| threshold | max frames | skipped | dist tracked-fresh mean / p95 / max | same face: dist mean / p95 | same face: Δ dist to ref mean / p95 | flips (same face) | missed faces (frames) | added faces (frames) | primary changed | wall ms/frame fresh → tracked (saved) | CPU ms/frame fresh → tracked (saved) | check µs | detected because |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		reasons := make([]string, 0, len(r.Detected))
		for k, v := range r.Detected {
			reasons = append(reasons, fmt.Sprintf("%s %d", k, v))
		}
		sort.Strings(reasons)
		fmt.Fprintf(w, "| %g | %d | %.1f %% | %.3f / %.3f / %.3f | %.3f / %.3f | %+.3f / %+.3f | %d (%d) | %d (%d) | %d (%d) | %d | %.2f → %.2f (%.1f %%) | %.2f → %.2f (%.1f %%) | %.1f | %s |\n",
			r.Threshold, r.MaxFrames, 100*r.SkipFrac, r.Distance.Mean, r.Distance.P95, r.Distance.Max,
			r.DistanceSame.Mean, r.DistanceSame.P95, r.RefDelta.Mean, r.RefDelta.P95, r.Flips, r.FlipsSame,
			r.MissedFaces, r.MissedFrames, r.AddedFaces, r.AddedFrames, r.PrimaryChanged,
			r.FreshMS, r.TrackedMS, r.SavedPct, r.FreshCPUMS, r.TrackedCPUMS, r.SavedCPUPct, r.CheckUS.Mean, strings.Join(reasons, ", "))
	}
}
