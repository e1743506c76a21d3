package pipeline

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"path/filepath"

	"github.com/facegate/facegate/eval"
	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/imageio"
	"github.com/facegate/facegate/infer/quality"
)

var _ eval.EnrollAssessor = (*Embedder)(nil)

// AssessEnrollment runs each input through infer's enrollment path (the
// gate's: detect, select the subject, judge with the default enrollment
// limits, embed) after degrading or composing it as the input says. Every
// face is embedded, for the bystander check. Inputs that cannot be read
// keep their error; a model error stops the run.
func (e *Embedder) AssessEnrollment(ctx context.Context, root string, in []eval.EnrollInput, progress func(int)) ([]eval.EnrollPhoto, error) {
	if progress == nil {
		progress = func(int) {}
	}
	lim := quality.DefaultEnrollmentLimits()
	out := make([]eval.EnrollPhoto, len(in))
	for i, x := range in {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		img, regions, err := makeInput(root, x)
		if err != nil {
			out[i] = eval.EnrollPhoto{Err: err, Verdict: string(quality.Refused), Region: -1}
			progress(1)
			continue
		}
		ph, err := e.p.AssessEnrollment(img, infer.Auto, lim, true)
		r := eval.EnrollPhoto{Faces: len(ph.Faces), Region: -1, Verdict: string(quality.Refused)}
		switch {
		case errors.Is(err, infer.ErrNoFace):
			r.Err = err
		case errors.Is(err, infer.ErrAmbiguous):
			r.Err, r.Ambiguous = err, true
		case errors.Is(err, infer.ErrOffCentre):
			// Region says whose face it was: the guard's catches.
			r.Err, r.OffCentre, r.Region = err, true, regionOf(ph.Faces[0], regions)
		case err != nil:
			return nil, fmt.Errorf("assess %s: %w", x.Path, err)
		default:
			q := ph.Quality
			r.Measures = eval.EnrollMeasures{InterOcular: q.InterOcular, Sharpness: q.Sharpness, Yaw: q.Yaw, Pitch: q.Pitch,
				Roll: q.Roll, Luma: q.MeanLuma, Clipped: math.Max(q.Crushed, q.Blown), DetScore: ph.Subject.Score}
			r.Verdict, r.Score, r.Reasons = string(ph.Judgement.Verdict), ph.Judgement.Score, ph.Judgement.Reasons
			r.Vector = ph.Subject.Embedding
			for _, f := range ph.Faces {
				if f != ph.Subject {
					r.Others = append(r.Others, f.Embedding)
				}
			}
			r.Region = regionOf(ph.Subject, regions)
		}
		out[i] = r
		progress(1)
	}
	return out, nil
}

// regionOf is the index of the first region holding f's centre, or -1.
func regionOf(f *infer.Face, regions []image.Rectangle) int {
	cx, cy := (f.Box.X0+f.Box.X1)/2, (f.Box.Y0+f.Box.Y1)/2
	for k, reg := range regions {
		if image.Pt(int(cx), int(cy)).In(reg) {
			return k
		}
	}
	return -1
}

// makeInput builds the image an input describes and, for compositions,
// the regions of the subject (0) and the other person (1).
func makeInput(root string, x eval.EnrollInput) (*imageio.RGB, []image.Rectangle, error) {
	img, err := decodeFile(filepath.Join(root, x.Path))
	if err != nil {
		return nil, nil, err
	}
	if x.Scale > 0 && x.Scale < 1 {
		if img, err = imageio.Resize(img, max(1, int(float64(img.W)*x.Scale)), max(1, int(float64(img.H)*x.Scale))); err != nil {
			return nil, nil, err
		}
	}
	if x.Blur > 0 {
		img = gaussianBlur(img, x.Blur)
	}
	if x.Other == "" {
		return img, []image.Rectangle{img.Bounds()}, nil
	}
	other, err := decodeFile(filepath.Join(root, x.Other))
	if err != nil {
		return nil, nil, err
	}
	w, h := img.W, img.H
	canvas := imageio.NewRGB(2*w, h)
	if x.Couple {
		other, err = imageio.Resize(other, w, h)
		if err != nil {
			return nil, nil, err
		}
		paste(canvas, img, 0, 0)
		paste(canvas, other, w, 0)
		return canvas, []image.Rectangle{image.Rect(0, 0, w, h), image.Rect(w, 0, 2*w, h)}, nil
	}
	s := x.OtherScale
	if s <= 0 || s >= 1 {
		s = 0.6
	}
	ow, oh := max(1, int(float64(w)*s)), max(1, int(float64(h)*s))
	if other, err = imageio.Resize(other, ow, oh); err != nil {
		return nil, nil, err
	}
	// The bystander behind, the subject centred in front.
	paste(canvas, other, 0, 0)
	paste(canvas, img, w/2, 0)
	return canvas, []image.Rectangle{image.Rect(w/2, 0, w/2+w, h), image.Rect(0, 0, w/2, oh)}, nil
}

func paste(dst, src *imageio.RGB, x0, y0 int) {
	for y := 0; y < src.H && y0+y < dst.H; y++ {
		n := min(src.W, dst.W-x0)
		copy(dst.Pix[dst.Offset(x0, y0+y):dst.Offset(x0, y0+y)+3*n], src.Pix[src.Offset(0, y):src.Offset(0, y)+3*n])
	}
}

// gaussianBlur blurs img with a separable Gaussian of the given sigma
// (edges clamped): the out-of-focus enrollment photo of the study.
func gaussianBlur(img *imageio.RGB, sigma float64) *imageio.RGB {
	r := int(math.Ceil(3 * sigma))
	k := make([]float64, 2*r+1)
	var sum float64
	for i := range k {
		d := float64(i - r)
		k[i] = math.Exp(-d * d / (2 * sigma * sigma))
		sum += k[i]
	}
	for i := range k {
		k[i] /= sum
	}
	pass := func(src *imageio.RGB, dx, dy int) *imageio.RGB {
		dst := imageio.NewRGB(src.W, src.H)
		for y := 0; y < src.H; y++ {
			for x := 0; x < src.W; x++ {
				var acc [3]float64
				for i, w := range k {
					sx := min(max(x+(i-r)*dx, 0), src.W-1)
					sy := min(max(y+(i-r)*dy, 0), src.H-1)
					o := src.Offset(sx, sy)
					acc[0] += w * float64(src.Pix[o])
					acc[1] += w * float64(src.Pix[o+1])
					acc[2] += w * float64(src.Pix[o+2])
				}
				o := dst.Offset(x, y)
				for c := 0; c < 3; c++ {
					dst.Pix[o+c] = uint8(math.Min(255, math.Round(acc[c])))
				}
			}
		}
		return dst
	}
	return pass(pass(img, 1, 0), 0, 1)
}
