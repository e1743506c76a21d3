package imageio

import (
	"fmt"
	"math"
)

// Resize returns src scaled to w×h. Along each axis it averages the source
// area each output pixel covers when shrinking (exact box filter with
// fractional edge weights, no aliasing) and interpolates bilinearly when
// enlarging; pixel centres are at (i+0.5) in both images, so the image
// content is not shifted.
func Resize(src *RGB, w, h int) (*RGB, error) {
	if err := src.Check(); err != nil {
		return nil, err
	}
	if w <= 0 || h <= 0 || src.W == 0 || src.H == 0 {
		return nil, fmt.Errorf("imageio: resize %dx%d to %dx%d: empty image", src.W, src.H, w, h)
	}
	if w == src.W && h == src.H {
		out := NewRGB(w, h)
		copy(out.Pix, src.Pix)
		return out, nil
	}
	xs := axisWeights(src.W, w)
	ys := axisWeights(src.H, h)
	out := NewRGB(w, h)
	acc := make([]float32, 3*w) // one output row
	tmp := make([]float32, 3*w) // one source row, resampled horizontally
	for y := 0; y < h; y++ {
		clear(acc)
		for t := ys.off[y]; t < ys.off[y+1]; t++ {
			row := src.Pix[3*int(ys.idx[t])*src.W:][:3*src.W]
			xs.apply(tmp, row)
			wy := ys.wt[t]
			for k, v := range tmp {
				acc[k] += wy * v
			}
		}
		o := out.Pix[3*y*w:][:3*w]
		for k, v := range acc {
			o[k] = clamp8(v)
		}
	}
	return out, nil
}

// taps holds, for each output position i of an axis, the source indices
// idx[off[i]:off[i+1]] and their weights (summing to 1).
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

// axisWeights returns the taps of n output positions along an axis of
// length srcN.
func axisWeights(srcN, n int) *taps {
	a := &taps{off: make([]int, 1, n+1)}
	add := func(j int, w float64) {
		a.idx = append(a.idx, int32(j))
		a.wt = append(a.wt, float32(w))
	}
	s := float64(srcN) / float64(n)
	for i := 0; i < n; i++ {
		if s > 1 { // shrink: box filter over [i*s, (i+1)*s)
			lo, hi := float64(i)*s, float64(i+1)*s
			for j := int(lo); j < srcN && float64(j) < hi; j++ {
				if d := math.Min(hi, float64(j+1)) - math.Max(lo, float64(j)); d > 0 {
					add(j, d/s)
				}
			}
		} else { // enlarge: bilinear between the two nearest source centres
			c := (float64(i)+0.5)*s - 0.5
			j := int(math.Floor(c))
			f := c - float64(j)
			j0, j1 := clampInt(j, 0, srcN-1), clampInt(j+1, 0, srcN-1)
			if j0 == j1 || f == 0 {
				add(j0, 1)
			} else {
				add(j0, 1-f)
				add(j1, f)
			}
		}
		a.off = append(a.off, len(a.idx))
	}
	return a
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
