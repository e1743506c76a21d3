package infer

import (
	"errors"
	"fmt"
	"image"
	"math"
	"sync"

	"github.com/facegate/facegate/infer/detect"
	"github.com/facegate/facegate/infer/imageio"
	"github.com/facegate/facegate/infer/manifest"
)

// ErrNotPAD is returned when a model is not a presentation-attack detector.
var ErrNotPAD = errors.New("not a presentation-attack detection model")

// PADConfig chooses how PAD reads the detector's face boxes.
type PADConfig struct {
	// Detector is the manifest name of the detector whose boxes are scored
	// (e.g. "blazeface-short"): each PAD model's box mapping for it (see
	// manifest.BoxMapping) is applied. A detector the manifests have no
	// mapping for, or "", uses the boxes as they are.
	Detector string
	// Box, when set, replaces the manifests' mappings for every model.
	Box *manifest.BoxMapping
}

// PAD scores faces as bona fide or presentation attacks (a printed photo, a
// screen) with one or more PAD models (MiniFASNet V2 and V1SE), averaging
// their softmax outputs as the models' authors do. It is safe for
// concurrent use.
type PAD struct {
	models []padModel
	bufs   sync.Pool // of *padBuf
}

type padModel struct {
	model  *Model
	name   string
	spec   manifest.PADSpec
	box    manifest.BoxMapping
	mapped bool
	size   int
	bgr    bool
	sig    string
	in     string
}

type padBuf struct {
	input []float32
	rs    PADResizer
}

// PADScore is one model's view of one face.
type PADScore struct {
	Model  string          // model name
	Logits []float32       // raw class logits
	Probs  []float64       // their softmax
	PReal  float64         // Probs[real class]
	Crop   image.Rectangle // the frame region the model saw (Max exclusive)
}

// PADResult is the verdict material for one face: PReal, the mean of the
// models' probabilities of the bona fide class, and each model's scores.
// Thresholding PReal is the caller's decision.
type PADResult struct {
	PReal  float64
	Models []PADScore
}

// NewPAD wraps loaded PAD models (all with manifest task "pad").
func NewPAD(models []*Model, cfg PADConfig) (*PAD, error) {
	if len(models) == 0 {
		return nil, fmt.Errorf("%w: no models given", ErrNotPAD)
	}
	if cfg.Box != nil {
		if err := checkBoxMapping(*cfg.Box); err != nil {
			return nil, err
		}
	}
	p := &PAD{}
	for _, m := range models {
		man := m.Manifest()
		if man.Task != manifest.TaskPAD || man.PAD == nil {
			return nil, fmt.Errorf("%w: %s is a %s", ErrNotPAD, man.Name, man.Task)
		}
		if man.Input.Width != man.Input.Height {
			return nil, fmt.Errorf("pad %s: input %dx%d is not square", man.Name, man.Input.Width, man.Input.Height)
		}
		pm := padModel{
			model: m, name: man.Name, spec: *man.PAD, size: man.Input.Width,
			bgr: man.Input.PixelFormat == "BGR", sig: man.Input.Signature, in: man.Input.Tensor,
		}
		switch {
		case cfg.Box != nil:
			pm.box, pm.mapped = *cfg.Box, true
		case cfg.Detector != "":
			pm.box, pm.mapped = man.PAD.BoxMappingFor(cfg.Detector)
		}
		p.models = append(p.models, pm)
	}
	return p, nil
}

func checkBoxMapping(b manifest.BoxMapping) error {
	ok := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if !ok(b.ScaleX) || !ok(b.ScaleY) || b.ScaleX <= 0 || b.ScaleY <= 0 || !ok(b.OffsetX) || !ok(b.OffsetY) {
		return fmt.Errorf("pad box mapping %+v: scales must be positive and offsets finite", b)
	}
	return nil
}

// OpenPAD loads the PAD models in dirs and returns them as one PAD with a
// function that releases them.
func OpenPAD(dirs []string, opts Options, cfg PADConfig) (*PAD, func(), error) {
	var models []*Model
	closeAll := func() {
		for _, m := range models {
			m.Close()
		}
	}
	for _, dir := range dirs {
		m, err := Load(dir, opts)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("open pad: %w", err)
		}
		models = append(models, m)
	}
	p, err := NewPAD(models, cfg)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return p, closeAll, nil
}

// Models lists the PAD's models in the order their scores are reported.
func (p *PAD) Models() []*Model {
	out := make([]*Model, len(p.models))
	for i, m := range p.models {
		out[i] = m.model
	}
	return out
}

// BoxMapping is the mapping model i applies to the detector's boxes, and
// false when it uses them as they are.
func (p *PAD) BoxMapping(i int) (manifest.BoxMapping, bool) {
	return p.models[i].box, p.models[i].mapped
}

// Score scores one face of img given the detector's box.
func (p *PAD) Score(img *imageio.RGB, box detect.Box) (PADResult, error) {
	res, err := p.ScoreBoxes(img, []detect.Box{box})
	if err != nil {
		return PADResult{}, err
	}
	return res[0], nil
}

// ScoreBoxes scores several faces of img, one model run per model.
func (p *PAD) ScoreBoxes(img *imageio.RGB, boxes []detect.Box) ([]PADResult, error) {
	if len(boxes) == 0 {
		return nil, nil
	}
	if err := img.Check(); err != nil {
		return nil, fmt.Errorf("pad: %w", err)
	}
	if img.W == 0 || img.H == 0 {
		return nil, fmt.Errorf("pad: image is empty")
	}
	buf, _ := p.bufs.Get().(*padBuf)
	if buf == nil {
		buf = new(padBuf)
	}
	defer p.bufs.Put(buf)
	out := make([]PADResult, len(boxes))
	for mi := range p.models {
		pm := &p.models[mi]
		per := 3 * pm.size * pm.size
		if cap(buf.input) < per*len(boxes) {
			buf.input = make([]float32, per*len(boxes))
		}
		input := buf.input[:per*len(boxes)]
		rects := make([]image.Rectangle, len(boxes))
		for i, b := range boxes {
			if pm.mapped {
				b = MapBox(b, pm.box)
			}
			r, err := PADCrop(input[i*per:(i+1)*per], img, b, pm.spec.CropScale, pm.size, pm.bgr, &buf.rs)
			if err != nil {
				return nil, fmt.Errorf("pad %s: face %d: %w", pm.name, i, err)
			}
			rects[i] = r
		}
		logits, err := pm.classify(input, len(boxes))
		if err != nil {
			return nil, err
		}
		for i := range boxes {
			row := logits.Row(i)
			probs := softmax(row)
			s := PADScore{Model: pm.name, Logits: append([]float32(nil), row...), Probs: probs,
				PReal: probs[pm.spec.RealClass], Crop: rects[i]}
			out[i].Models = append(out[i].Models, s)
			out[i].PReal += s.PReal / float64(len(p.models))
		}
	}
	return out, nil
}

// ClassifyCrops runs model i on n crops already cut ([n,size,size,3] in the
// model's pixel order, 0..255) and returns its logits, [n,classes].
func (p *PAD) ClassifyCrops(i int, crops []float32, n int) (Float32Batch, error) {
	if i < 0 || i >= len(p.models) {
		return Float32Batch{}, fmt.Errorf("%w: pad has %d models, not %d", ErrInput, len(p.models), i+1)
	}
	return p.models[i].classify(crops, n)
}

func (pm *padModel) classify(crops []float32, n int) (Float32Batch, error) {
	per := 3 * pm.size * pm.size
	if len(crops) != n*per {
		return Float32Batch{}, fmt.Errorf("%w: pad %s: %d values for %d crops of %d", ErrInput, pm.name, len(crops), n, per)
	}
	res, err := pm.model.runFloat32(pm.sig, map[string]Float32Batch{
		pm.in: {Shape: []int64{int64(n), int64(pm.size), int64(pm.size), 3}, Data: crops},
	}, []string{pm.spec.LogitsOutput}, nil)
	if err != nil {
		return Float32Batch{}, fmt.Errorf("pad %s: %w", pm.name, err)
	}
	if res[0].Rows() != n || res[0].RowLen() != pm.spec.Classes {
		return Float32Batch{}, fmt.Errorf("pad %s: logits of shape %v, want [%d %d]", pm.name, res[0].Shape, n, pm.spec.Classes)
	}
	return res[0], nil
}

func softmax(z []float32) []float64 {
	m := math.Inf(-1)
	for _, v := range z {
		m = math.Max(m, float64(v))
	}
	out := make([]float64, len(z))
	var sum float64
	for i, v := range z {
		out[i] = math.Exp(float64(v) - m)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// MapBox applies a box mapping: the centre moves by OffsetX box widths and
// OffsetY box heights, then the width and height are scaled.
func MapBox(b detect.Box, m manifest.BoxMapping) detect.Box {
	w, h := b.W(), b.H()
	cx := (b.X0+b.X1)/2 + m.OffsetX*w
	cy := (b.Y0+b.Y1)/2 + m.OffsetY*h
	w, h = w*m.ScaleX, h*m.ScaleY
	return detect.Box{X0: cx - w/2, Y0: cy - h/2, X1: cx + w/2, Y1: cy + h/2}
}

// PADCropRect is the frame region (Max exclusive) the MiniFASNet authors'
// rule cuts for a face box in a w x h frame: the box enlarged scale times
// about its centre, the scale capped so the region fits the frame, shifted
// (not padded) to stay inside it, its corners truncated to whole pixels.
// The box is (X0, Y0) and width and height as the authors' detector gives
// them; their inclusive right/bottom corner becomes the exclusive Max here.
func PADCropRect(w, h int, box detect.Box, scale float64) (image.Rectangle, error) {
	bw, bh := box.W(), box.H()
	for _, v := range []float64{box.X0, box.Y0, bw, bh, scale} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return image.Rectangle{}, fmt.Errorf("%w: pad crop of box %+v at scale %g", ErrInput, box, scale)
		}
	}
	if bw <= 0 || bh <= 0 || w <= 0 || h <= 0 {
		return image.Rectangle{}, fmt.Errorf("%w: pad crop of box %+v in a %dx%d frame", ErrInput, box, w, h)
	}
	scale = min(float64(h-1)/bh, float64(w-1)/bw, scale)
	nw, nh := bw*scale, bh*scale
	cx, cy := box.X0+bw/2, box.Y0+bh/2
	x0, y0, x1, y1 := cx-nw/2, cy-nh/2, cx+nw/2, cy+nh/2
	if x0 < 0 {
		x1 -= x0
		x0 = 0
	}
	if y0 < 0 {
		y1 -= y0
		y0 = 0
	}
	if x1 > float64(w-1) {
		x0 -= x1 - float64(w-1)
		x1 = float64(w - 1)
	}
	if y1 > float64(h-1) {
		y0 -= y1 - float64(h-1)
		y1 = float64(h - 1)
	}
	// Python's int() truncates toward zero; the shifts keep x0, y0 >= 0 up
	// to rounding, where truncation toward zero still gives 0.
	r := image.Rect(int(x0), int(y0), int(x1)+1, int(y1)+1)
	return r.Intersect(image.Rect(0, 0, w, h)), nil
}

// PADCrop cuts a PAD model's input for one face into dst[:3*size*size]:
// PADCropRect's region of img resized to size x size as OpenCV's
// cv2.resize(INTER_LINEAR) does it, as float32 0..255, BGR when bgr is set.
// rs may be nil; passing one reuses its buffers.
func PADCrop(dst []float32, img *imageio.RGB, box detect.Box, scale float64, size int, bgr bool, rs *PADResizer) (image.Rectangle, error) {
	if err := img.Check(); err != nil {
		return image.Rectangle{}, err
	}
	if size <= 0 || len(dst) < 3*size*size {
		return image.Rectangle{}, fmt.Errorf("%w: pad crop of %d px into %d values", ErrInput, size, len(dst))
	}
	r, err := PADCropRect(img.W, img.H, box, scale)
	if err != nil {
		return image.Rectangle{}, err
	}
	if r.Empty() {
		return image.Rectangle{}, fmt.Errorf("%w: pad crop of box %+v is empty in a %dx%d frame", ErrInput, box, img.W, img.H)
	}
	if rs == nil {
		rs = new(PADResizer)
	}
	rs.resize(dst, img, r, size, bgr)
	return r, nil
}

// OpenCV's INTER_LINEAR on 8-bit images (imgproc/src/resize.cpp): weights
// in 1/2048 from float32 source positions, a horizontal pass into ints and
// a vertical pass that, in the SIMD form x86-64 and Arm builds run, drops 4
// bits, keeps the high 16 bits of each product and rounds off the last 2.
// models/minifasnet.py has the same in numpy, checked against OpenCV 4.10
// (docs/models/minifasnet.md, "The traps").
const padResizeOne = 1 << 11

type padTaps struct {
	i0, i1 []int
	w0, w1 []int32
}

func (t *padTaps) build(nSrc, nDst int) {
	t.i0, t.i1 = t.i0[:0], t.i1[:0]
	t.w0, t.w1 = t.w0[:0], t.w1[:0]
	scale := float64(nSrc) / float64(nDst)
	for d := 0; d < nDst; d++ {
		// The explicit conversions keep the compiler from fusing a
		// multiply-add (which would round differently from OpenCV).
		f := float32(float64((float64(d)+0.5)*scale) - 0.5)
		fl := float32(math.Floor(float64(f)))
		i := int(fl)
		f -= fl
		if i < 0 {
			f, i = 0, 0
		}
		if i >= nSrc-1 {
			f, i = 0, nSrc-1
		}
		t.i0 = append(t.i0, i)
		t.i1 = append(t.i1, min(i+1, nSrc-1))
		t.w0 = append(t.w0, int32(math.RoundToEven(float64((1-f)*padResizeOne))))
		t.w1 = append(t.w1, int32(math.RoundToEven(float64(f*padResizeOne))))
	}
}

// PADResizer holds the filter taps and row buffers of PAD crops between
// calls. The zero value is ready to use; it is not safe for concurrent use.
type PADResizer struct {
	xs, ys padTaps
	r0, r1 []int32
}

func (rs *PADResizer) hrow(dst []int32, img *imageio.RGB, r image.Rectangle, sy int) {
	src := img.Pix[img.Offset(r.Min.X, r.Min.Y+sy):]
	for dx := range rs.xs.i0 {
		a := src[3*rs.xs.i0[dx]:]
		b := src[3*rs.xs.i1[dx]:]
		w0, w1 := rs.xs.w0[dx], rs.xs.w1[dx]
		for c := 0; c < 3; c++ {
			dst[3*dx+c] = int32(a[c])*w0 + int32(b[c])*w1
		}
	}
}

func (rs *PADResizer) resize(dst []float32, img *imageio.RGB, r image.Rectangle, size int, bgr bool) {
	rs.xs.build(r.Dx(), size)
	rs.ys.build(r.Dy(), size)
	if cap(rs.r0) < 3*size {
		rs.r0, rs.r1 = make([]int32, 3*size), make([]int32, 3*size)
	}
	r0, r1 := rs.r0[:3*size], rs.r1[:3*size]
	have0, have1 := -1, -1
	for dy := 0; dy < size; dy++ {
		s0, s1 := rs.ys.i0[dy], rs.ys.i1[dy]
		switch {
		case s0 == have0:
		case s0 == have1:
			r0, r1 = r1, r0
			have0, have1 = have1, have0
		default:
			rs.hrow(r0, img, r, s0)
			have0 = s0
		}
		if s1 != have1 {
			rs.hrow(r1, img, r, s1)
			have1 = s1
		}
		b0, b1 := rs.ys.w0[dy], rs.ys.w1[dy]
		out := dst[3*size*dy:][:3*size]
		for x := 0; x < size; x++ {
			for c := 0; c < 3; c++ {
				k := 3*x + c
				v := (((r0[k] >> 4) * b0) >> 16) + (((r1[k] >> 4) * b1) >> 16)
				v = (v + 2) >> 2
				v = min(max(v, 0), 255)
				oc := c
				if bgr {
					oc = 2 - c
				}
				out[3*x+oc] = float32(v)
			}
		}
	}
}
