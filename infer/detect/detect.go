package detect

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/facegate/facegate/infer/manifest"
)

// Point is a position in pixels (continuous coordinates: pixel i covers
// [i, i+1)).
type Point struct{ X, Y float64 }

// Box is an axis-aligned rectangle in pixels.
type Box struct{ X0, Y0, X1, Y1 float64 }

// W is the box width.
func (b Box) W() float64 { return b.X1 - b.X0 }

// H is the box height.
func (b Box) H() float64 { return b.Y1 - b.Y0 }

// Area is the box area; an inverted box has none.
func (b Box) Area() float64 { return math.Max(0, b.W()) * math.Max(0, b.H()) }

// IoU is the intersection over union of two boxes.
func IoU(a, b Box) float64 {
	ix := math.Min(a.X1, b.X1) - math.Max(a.X0, b.X0)
	iy := math.Min(a.Y1, b.Y1) - math.Max(a.Y0, b.Y0)
	if ix <= 0 || iy <= 0 {
		return 0
	}
	inter := ix * iy
	return inter / (a.Area() + b.Area() - inter)
}

// Detection is one face: a box, keypoints in the order the manifest names
// them, and a score in [0,1].
type Detection struct {
	Box       Box
	Keypoints []Point
	Score     float64
}

// Anchor is an SSD anchor centre in normalised [0,1] input coordinates with
// unit size (MediaPipe's fixed_anchor_size).
type Anchor struct{ X, Y float64 }

// ErrSpec is wrapped by an anchor layout that does not match the model.
var ErrSpec = errors.New("detector spec")

// Anchors generates MediaPipe SSD anchors for a square input of size px:
// for each stride, a grid of ceil(size/stride) cells, each with
// AnchorsPerLocation anchors at the cell centre (offset 0.5). Consecutive
// strides that are equal share one grid in MediaPipe; here each entry of
// Strides is already one grid, with its anchor count in AnchorsPerLocation.
func Anchors(spec manifest.AnchorSpec, size int) ([]Anchor, error) {
	if len(spec.Strides) == 0 || len(spec.Strides) != len(spec.AnchorsPerLocation) || size <= 0 {
		return nil, fmt.Errorf("%w: strides %v and anchors_per_location %v must be non-empty and the same length", ErrSpec, spec.Strides, spec.AnchorsPerLocation)
	}
	var out []Anchor
	for i, stride := range spec.Strides {
		if stride <= 0 || spec.AnchorsPerLocation[i] <= 0 {
			return nil, fmt.Errorf("%w: stride %d with %d anchors", ErrSpec, stride, spec.AnchorsPerLocation[i])
		}
		grid := (size + stride - 1) / stride
		for y := 0; y < grid; y++ {
			for x := 0; x < grid; x++ {
				for range spec.AnchorsPerLocation[i] {
					out = append(out, Anchor{X: (float64(x) + spec.Offset) / float64(grid), Y: (float64(y) + spec.Offset) / float64(grid)})
				}
			}
		}
	}
	if spec.Count > 0 && len(out) != spec.Count {
		return nil, fmt.Errorf("%w: layout gives %d anchors, manifest says %d", ErrSpec, len(out), spec.Count)
	}
	return out, nil
}

// Decoder turns a detector's raw outputs into detections in input pixels.
type Decoder struct {
	Anchors   []Anchor
	Size      int     // input size in pixels (square)
	Keypoints int     // keypoints per box
	BoxScale  float64 // raw offsets are divided by this (the input size for BlazeFace)
	Logits    bool    // scores are logits
	// MinScore drops candidates below it (after the sigmoid); IoU merges
	// overlapping candidates in the weighted NMS.
	MinScore float64
	IoU      float64
}

// NewDecoder builds a decoder from a detector manifest.
func NewDecoder(m *manifest.Manifest, minScore, iou float64) (*Decoder, error) {
	if m.Detector == nil {
		return nil, fmt.Errorf("%w: model %s is not a detector", ErrSpec, m.Name)
	}
	if m.Input.Width != m.Input.Height {
		return nil, fmt.Errorf("%w: model %s input %dx%d is not square", ErrSpec, m.Name, m.Input.Width, m.Input.Height)
	}
	anchors, err := Anchors(m.Detector.Anchors, m.Input.Width)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", m.Name, err)
	}
	scale := m.Detector.BoxScale
	if scale <= 0 {
		scale = float64(m.Input.Width)
	}
	return &Decoder{Anchors: anchors, Size: m.Input.Width, Keypoints: m.Detector.Keypoints, BoxScale: scale,
		Logits: m.Detector.ScoreLogits, MinScore: minScore, IoU: iou}, nil
}

// Stride is the number of raw values per anchor in the boxes output.
func (d *Decoder) Stride() int { return 4 + 2*d.Keypoints }

// Decode decodes one image's raw outputs (boxes: anchors x Stride values,
// scores: one per anchor) into detections in input pixels, after weighted
// non-maximum suppression, best first.
func (d *Decoder) Decode(boxes, scores []float32) ([]Detection, error) {
	n := len(d.Anchors)
	if len(scores) != n || len(boxes) != n*d.Stride() {
		return nil, fmt.Errorf("%w: got %d box values and %d scores for %d anchors of %d values", ErrSpec, len(boxes), len(scores), n, d.Stride())
	}
	var cands []Detection
	s := float64(d.Size)
	for i, a := range d.Anchors {
		score := float64(scores[i])
		if d.Logits {
			score = sigmoid(score)
		}
		if score < d.MinScore || math.IsNaN(score) {
			continue
		}
		r := boxes[i*d.Stride() : (i+1)*d.Stride()]
		cx := float64(r[0])/d.BoxScale + a.X
		cy := float64(r[1])/d.BoxScale + a.Y
		w := float64(r[2]) / d.BoxScale
		h := float64(r[3]) / d.BoxScale
		det := Detection{
			Box:       Box{X0: (cx - w/2) * s, Y0: (cy - h/2) * s, X1: (cx + w/2) * s, Y1: (cy + h/2) * s},
			Score:     score,
			Keypoints: make([]Point, d.Keypoints),
		}
		for k := range d.Keypoints {
			det.Keypoints[k] = Point{
				X: (float64(r[4+2*k])/d.BoxScale + a.X) * s,
				Y: (float64(r[5+2*k])/d.BoxScale + a.Y) * s,
			}
		}
		cands = append(cands, det)
	}
	return WeightedNMS(cands, d.IoU), nil
}

func sigmoid(x float64) float64 {
	x = math.Max(-100, math.Min(100, x))
	return 1 / (1 + math.Exp(-x))
}

// WeightedNMS is MediaPipe's weighted non-maximum suppression: candidates
// are taken best first; each takes every remaining candidate overlapping it
// by more than iou, and its box and keypoints become the score-weighted mean
// of that cluster, with the best score. It smooths the jitter plain NMS shows
// on video.
func WeightedNMS(cands []Detection, iou float64) []Detection {
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].Score > cands[j].Score })
	used := make([]bool, len(cands))
	var out []Detection
	for i := range cands {
		if used[i] {
			continue
		}
		best := cands[i]
		var wsum float64
		var box Box
		kps := make([]Point, len(best.Keypoints))
		for j := i; j < len(cands); j++ {
			if used[j] || (j != i && IoU(best.Box, cands[j].Box) <= iou) {
				continue
			}
			used[j] = true
			c, w := cands[j], cands[j].Score
			wsum += w
			box.X0 += w * c.Box.X0
			box.Y0 += w * c.Box.Y0
			box.X1 += w * c.Box.X1
			box.Y1 += w * c.Box.Y1
			for k := range kps {
				kps[k].X += w * c.Keypoints[k].X
				kps[k].Y += w * c.Keypoints[k].Y
			}
		}
		box.X0, box.Y0, box.X1, box.Y1 = box.X0/wsum, box.Y0/wsum, box.X1/wsum, box.Y1/wsum
		for k := range kps {
			kps[k].X /= wsum
			kps[k].Y /= wsum
		}
		out = append(out, Detection{Box: box, Keypoints: kps, Score: best.Score})
	}
	return out
}

// Letterbox maps between an image of w x h pixels and the square model input
// of size pixels the image is scaled into: resized to a whole number of
// pixels with its aspect kept, centred, the rest padded.
type Letterbox struct {
	ScaleX, ScaleY float64 // input pixels per image pixel
	PadX, PadY     int     // input pixels of padding before the image
	W, H           int     // the scaled image inside the input
}

// NewLetterbox fits a w x h image into a size x size input.
func NewLetterbox(w, h, size int) Letterbox {
	scale := float64(size) / float64(max(w, h, 1))
	sw := min(size, max(1, int(math.Round(scale*float64(w)))))
	sh := min(size, max(1, int(math.Round(scale*float64(h)))))
	return Letterbox{
		ScaleX: float64(sw) / float64(max(w, 1)),
		ScaleY: float64(sh) / float64(max(h, 1)),
		PadX:   (size - sw) / 2,
		PadY:   (size - sh) / 2,
		W:      sw,
		H:      sh,
	}
}

// ToImage maps a point in input pixels back to image pixels.
func (l Letterbox) ToImage(p Point) Point {
	return Point{X: (p.X - float64(l.PadX)) / l.ScaleX, Y: (p.Y - float64(l.PadY)) / l.ScaleY}
}

// ToInput maps a point in image pixels to input pixels.
func (l Letterbox) ToInput(p Point) Point {
	return Point{X: p.X*l.ScaleX + float64(l.PadX), Y: p.Y*l.ScaleY + float64(l.PadY)}
}

// MapToImage maps a detection from input pixels to image pixels.
func (l Letterbox) MapToImage(d Detection) Detection {
	p0 := l.ToImage(Point{d.Box.X0, d.Box.Y0})
	p1 := l.ToImage(Point{d.Box.X1, d.Box.Y1})
	out := Detection{Box: Box{p0.X, p0.Y, p1.X, p1.Y}, Score: d.Score, Keypoints: make([]Point, len(d.Keypoints))}
	for i, k := range d.Keypoints {
		out.Keypoints[i] = l.ToImage(k)
	}
	return out
}
