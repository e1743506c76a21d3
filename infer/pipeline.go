package infer

import (
	"errors"
	"fmt"
	"math"

	"github.com/facegate/facegate/infer/align"
	"github.com/facegate/facegate/infer/detect"
	"github.com/facegate/facegate/infer/imageio"
	"github.com/facegate/facegate/infer/quality"
)

// ErrNoFace is returned when an image holds no face the detector accepts.
var ErrNoFace = errors.New("no face found")

// Face is one detected face carried through the pipeline.
type Face struct {
	detect.Detection                  // box and keypoints in image pixels
	Names            []string         // keypoint names
	Transform        align.Similarity // image -> chip
	Embedding        []float32        // L2-normalised; nil until embedded
	Padded           bool             // found only after padding the image
}

// InterOcular is the distance between the eye keypoints in image pixels, or
// 0 when the detector has no eye keypoints.
func (f *Face) InterOcular() float64 {
	r, l := f.keypoint("right_eye"), f.keypoint("left_eye")
	if r == nil || l == nil {
		return 0
	}
	return math.Hypot(r.X-l.X, r.Y-l.Y)
}

func (f *Face) keypoint(name string) *detect.Point {
	for i, n := range f.Names {
		if n == name && i < len(f.Keypoints) {
			return &f.Keypoints[i]
		}
	}
	return nil
}

// Pipeline runs detect → align → embed on images.
type Pipeline struct {
	Det *Detector
	Emb *Embedder
	// PadRetry pads an image by this fraction of its longer side on every
	// edge and detects again when the first pass finds nothing: tightly
	// cropped face photos (ID photos, uploads) fill the frame, and
	// BlazeFace is trained on faces with context around them. 0 disables.
	PadRetry float64
}

// Detect finds the faces in img. With PadRetry it detects again on a padded
// copy when the first pass finds nothing or a face that fills most of the
// frame (box over 60 % of the shorter side), where BlazeFace's keypoints
// drift; the padded pass wins when it finds a face.
func (p *Pipeline) Detect(img *imageio.RGB) ([]Face, error) {
	dets, err := p.Det.Detect(img)
	if err != nil {
		return nil, err
	}
	padded := false
	if p.PadRetry > 0 && (len(dets) == 0 || fillsFrame(dets, img)) {
		pad := int(math.Round(p.PadRetry * float64(max(img.W, img.H))))
		again, err := p.Det.detectPadded(img, pad)
		if err != nil {
			return nil, err
		}
		if len(again) > 0 {
			for i := range again {
				again[i] = shift(again[i], -float64(pad))
			}
			dets, padded = again, true
		}
	}
	faces := make([]Face, len(dets))
	for i, d := range dets {
		faces[i] = Face{Detection: d, Names: p.Det.KeypointNames(), Padded: padded}
	}
	return faces, nil
}

func fillsFrame(dets []detect.Detection, img *imageio.RGB) bool {
	short := float64(min(img.W, img.H))
	for _, d := range dets {
		if max(d.Box.W(), d.Box.H()) > 0.6*short {
			return true
		}
	}
	return false
}

// Embed aligns and embeds the faces of img in one batch, filling in each
// face's Transform and Embedding.
func (p *Pipeline) Embed(img *imageio.RGB, faces []*Face) error {
	if len(faces) == 0 {
		return nil
	}
	buf := p.Emb.getChips(len(faces))
	defer p.Emb.putChips(buf)
	n := p.Emb.ChipLen()
	var kps []align.Point
	for i, f := range faces {
		kps = kps[:0]
		for _, pt := range f.Keypoints {
			kps = append(kps, align.Point{pt.X, pt.Y})
		}
		m, err := p.Emb.Align(img, kps, f.Names, buf.chips[i*n:(i+1)*n])
		if err != nil {
			return fmt.Errorf("align face %d: %w", i, err)
		}
		f.Transform = m
	}
	emb, err := p.Emb.EmbedChips(buf.chips, len(faces))
	if err != nil {
		return err
	}
	for i, f := range faces {
		f.Embedding = emb[i]
	}
	return nil
}

// Primary picks the face a single-subject photo is about: among faces whose
// box holds the image centre the largest, else the largest overall.
func Primary(faces []Face, w, h int) (*Face, error) {
	if len(faces) == 0 {
		return nil, ErrNoFace
	}
	cx, cy := float64(w)/2, float64(h)/2
	best, bestCentred := -1, false
	for i := range faces {
		b := faces[i].Box
		centred := b.X0 <= cx && cx <= b.X1 && b.Y0 <= cy && cy <= b.Y1
		switch {
		case best < 0, centred && !bestCentred:
		case centred == bestCentred && b.Area() > faces[best].Box.Area():
		default:
			continue
		}
		best, bestCentred = i, centred
	}
	return &faces[best], nil
}

// Largest is the face with the largest box (the first of equals), or nil
// when there is none: the door's subject in the daemon.
func Largest(faces []Face) *Face {
	var best *Face
	for i := range faces {
		if best == nil || faces[i].Box.Area() > best.Box.Area() {
			best = &faces[i]
		}
	}
	return best
}

// EmbedPrimary detects, picks the primary face and embeds it.
func (p *Pipeline) EmbedPrimary(img *imageio.RGB) (*Face, error) {
	faces, err := p.Detect(img)
	if err != nil {
		return nil, err
	}
	f, err := Primary(faces, img.W, img.H)
	if err != nil {
		return nil, err
	}
	if err := p.Embed(img, []*Face{f}); err != nil {
		return nil, err
	}
	return f, nil
}

func shift(d detect.Detection, by float64) detect.Detection {
	d.Box = detect.Box{X0: d.Box.X0 + by, Y0: d.Box.Y0 + by, X1: d.Box.X1 + by, Y1: d.Box.Y1 + by}
	for i := range d.Keypoints {
		d.Keypoints[i].X += by
		d.Keypoints[i].Y += by
	}
	return d
}

// Assess measures a face's quality (size, sharpness on its aligned chip,
// pose, exposure) against th. A face that fails comes back with OK false and
// its failed checks; the error is only for unusable input.
func (p *Pipeline) Assess(img *imageio.RGB, f *Face, th quality.Thresholds) (quality.Report, error) {
	return p.assess(img, f, th, false)
}

// AssessEmbed is Assess followed, when the face passes, by Embed of that
// face, with the chip aligned once for both: the per-frame path of the
// daemon. f.Transform and f.Embedding are set only when the face passes.
func (p *Pipeline) AssessEmbed(img *imageio.RGB, f *Face, th quality.Thresholds) (quality.Report, error) {
	if p.Emb == nil {
		return quality.Report{}, errors.New("assess and embed: the pipeline has no embedder")
	}
	return p.assess(img, f, th, true)
}

func (p *Pipeline) assess(img *imageio.RGB, f *Face, th quality.Thresholds, embed bool) (quality.Report, error) {
	pts := make([][2]float64, len(f.Keypoints))
	for i, k := range f.Keypoints {
		pts[i] = [2]float64{k.X, k.Y}
	}
	kps, err := quality.KeypointsFrom(pts, f.Names)
	if err != nil {
		return quality.Report{}, err
	}
	qf := quality.Face{Box: quality.Box{X0: f.Box.X0, Y0: f.Box.Y0, X1: f.Box.X1, Y1: f.Box.Y1}, Keypoints: kps}
	if p.Emb == nil {
		return quality.Assess(img, qf, th)
	}
	sel, err := p.Emb.Template().Select(pts, f.Names)
	if err != nil {
		return quality.Report{}, err
	}
	buf := p.Emb.getChips(1)
	defer p.Emb.putChips(buf)
	m, err := align.Crop(img, sel, p.Emb.Template(), buf.chips)
	if err != nil {
		return quality.Report{}, err
	}
	qf.Chip = p.Emb.chipRGB(buf)
	r, err := quality.Assess(img, qf, th)
	if err != nil || !embed || !r.OK {
		return r, err
	}
	emb, err := p.Emb.EmbedChips(buf.chips, 1)
	if err != nil {
		return quality.Report{}, err
	}
	f.Transform, f.Embedding = m, emb[0]
	return r, nil
}

// OpenPipeline loads a detector and, unless embedderDir is empty, an
// embedder, and returns the pipeline with a function that releases both.
func OpenPipeline(detectorDir, embedderDir string, opts Options, dcfg DetectorConfig, padRetry float64) (*Pipeline, func(), error) {
	dm, err := Load(detectorDir, opts)
	if err != nil {
		return nil, nil, err
	}
	closeFn := func() { dm.Close() }
	det, err := NewDetector(dm, dcfg)
	if err != nil {
		closeFn()
		return nil, nil, err
	}
	p := &Pipeline{Det: det, PadRetry: padRetry}
	if embedderDir == "" {
		return p, closeFn, nil
	}
	em, err := Load(embedderDir, opts)
	if err != nil {
		closeFn()
		return nil, nil, err
	}
	closeFn = func() { dm.Close(); em.Close() }
	if p.Emb, err = NewEmbedder(em); err != nil {
		closeFn()
		return nil, nil, err
	}
	return p, closeFn, nil
}
