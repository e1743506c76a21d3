package imageio

import (
	"fmt"
	"math"
	"slices"
)

// Resize returns src scaled to w×h. Along each axis it averages the source
// area each output pixel covers when shrinking (exact box filter with
// fractional edge weights, no aliasing) and interpolates bilinearly when
// enlarging; pixel centres are at (i+0.5) in both images, so the image
// content is not shifted.
func Resize(src *RGB, w, h int) (*RGB, error) {
	if err := checkResize(src, 0, w, h); err != nil {
		return nil, err
	}
	out := NewRGB(w, h)
	if w == src.W && h == src.H {
		copy(out.Pix, src.Pix)
		return out, nil
	}
	var r Resizer
	r.prepare(src, 0, w, h)
	for y := 0; y < h; y++ {
		o := out.Pix[3*y*w:][:3*w]
		for k, v := range r.row(src, y) {
			o[k] = clamp8(v)
		}
	}
	return out, nil
}

// Resizer scales images straight into float32 model input with Resize's
// filter, keeping its filter taps and row buffers between calls (they are
// rebuilt only when the sizes change). The zero value is ready to use. A
// Resizer is not safe for concurrent use.
type Resizer struct {
	geom     [5]int // srcW, srcH, pad, w, h that xs and ys were built for
	xs, ys   taps
	acc, tmp []float32
}

// Float32 scales src, framed by pad black pixels on every side, to w×h and
// writes it as HWC float32 values 0..255, output row y at
// dst[y*stride:][:3*w] (stride in floats, so the image can sit inside a
// larger letterboxed input). The values are exactly those of ToFloat32 over
// Resize of the padded image, which is never built. It does not allocate
// once the Resizer has seen these sizes.
func (r *Resizer) Float32(dst []float32, stride int, src *RGB, pad, w, h int) error {
	if err := checkResize(src, pad, w, h); err != nil {
		return err
	}
	if stride < 3*w || len(dst) < (h-1)*stride+3*w {
		return fmt.Errorf("imageio: resize to %dx%d: output holds %d floats at stride %d", w, h, len(dst), stride)
	}
	if pad == 0 && w == src.W && h == src.H {
		for y := 0; y < h; y++ {
			o := dst[y*stride:][:3*w]
			for k, v := range src.Pix[3*y*w:][:3*w] {
				o[k] = float32(v)
			}
		}
		return nil
	}
	r.prepare(src, pad, w, h)
	for y := 0; y < h; y++ {
		o := dst[y*stride:][:3*w]
		for k, v := range r.row(src, y) {
			o[k] = float32(clamp8(v))
		}
	}
	return nil
}

func checkResize(src *RGB, pad, w, h int) error {
	if err := src.Check(); err != nil {
		return err
	}
	if pad < 0 {
		return fmt.Errorf("imageio: resize with padding %d", pad)
	}
	if w <= 0 || h <= 0 || src.W == 0 || src.H == 0 {
		return fmt.Errorf("imageio: resize %dx%d to %dx%d: empty image", src.W, src.H, w, h)
	}
	return nil
}

// prepare builds the taps and row buffers for src framed by pad to w×h
// unless the last call had the same sizes.
func (r *Resizer) prepare(src *RGB, pad, w, h int) {
	g := [5]int{src.W, src.H, pad, w, h}
	if g == r.geom {
		return
	}
	r.xs.build(src.W, pad, w)
	r.ys.build(src.H, pad, h)
	if cap(r.acc) < 3*w {
		r.acc = make([]float32, 3*w) // one output row
		r.tmp = make([]float32, 3*w) // one source row, resampled horizontally
	}
	r.acc, r.tmp = r.acc[:3*w], r.tmp[:3*w]
	r.geom = g
}

// row returns output row y (floats before rounding); it stays valid until
// the next call.
func (r *Resizer) row(src *RGB, y int) []float32 {
	clear(r.acc)
	for t := r.ys.off[y]; t < r.ys.off[y+1]; t++ {
		r.xs.apply(r.tmp, src.Pix[3*int(r.ys.idx[t])*src.W:][:3*src.W])
		wy := r.ys.wt[t]
		for k, v := range r.tmp {
			r.acc[k] += wy * v
		}
	}
	return r.acc
}

// taps holds, for each output position i of an axis, the source indices
// idx[off[i]:off[i+1]] and their weights (summing to 1 over the padded
// axis; taps on the black padding are left out, as they add nothing).
type taps struct {
	off []int
	idx []int32
	wt  []float32
}

// apply resamples one packed RGB row into dst (3 floats per output pixel).
func (a *taps) apply(dst []float32, row []uint8) {
	for x := 0; x+1 < len(a.off); x++ {
		var r, g, b float32
		for t := a.off[x]; t < a.off[x+1]; t++ {
			i, w := 3*int(a.idx[t]), a.wt[t]
			p := row[i : i+3 : i+3]
			r += w * float32(p[0])
			g += w * float32(p[1])
			b += w * float32(p[2])
		}
		dst[3*x], dst[3*x+1], dst[3*x+2] = r, g, b
	}
}

// build sets the taps of n output positions along an axis of srcN pixels
// framed by pad black pixels on both ends, reusing a's memory.
func (a *taps) build(srcN, pad, n int) {
	a.off, a.idx, a.wt = append(slices.Grow(a.off[:0], n+1), 0), a.idx[:0], a.wt[:0]
	add := func(j int, w float64) {
		if j -= pad; j >= 0 && j < srcN {
			a.idx = append(a.idx, int32(j))
			a.wt = append(a.wt, float32(w))
		}
	}
	full := srcN + 2*pad
	s := float64(full) / float64(n)
	for i := 0; i < n; i++ {
		if s > 1 { // shrink: box filter over [i*s, (i+1)*s)
			lo, hi := float64(i)*s, float64(i+1)*s
			for j := int(lo); j < full && float64(j) < hi; j++ {
				if d := math.Min(hi, float64(j+1)) - math.Max(lo, float64(j)); d > 0 {
					add(j, d/s)
				}
			}
		} else { // enlarge: bilinear between the two nearest source centres
			c := (float64(i)+0.5)*s - 0.5
			j := int(math.Floor(c))
			f := c - float64(j)
			j0, j1 := clampInt(j, 0, full-1), clampInt(j+1, 0, full-1)
			if j0 == j1 || f == 0 {
				add(j0, 1)
			} else {
				add(j0, 1-f)
				add(j1, f)
			}
		}
		a.off = append(a.off, len(a.idx))
	}
}

func clampInt(v, lo, hi int) int {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

func clamp8(v float32) uint8 {
	if v <= 0 {
		return 0
	}
	if v >= 255 {
		return 255
	}
	return uint8(v + 0.5)
}

// ToFloat32 writes img as HWC float32 values 0..255 (R, G, B per pixel,
// rows top to bottom), the layout and range of the models' image inputs.
// It writes into dst when cap(dst) is large enough (no allocation) and
// returns the 3*W*H-element slice written.
func ToFloat32(dst []float32, img *RGB) []float32 {
	n := len(img.Pix)
	if cap(dst) < n {
		dst = make([]float32, n)
	}
	dst = dst[:n]
	for i, v := range img.Pix {
		dst[i] = float32(v)
	}
	return dst
}
