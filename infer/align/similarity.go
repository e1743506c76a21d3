package align

import (
	"errors"
	"fmt"
	"math"
)

// Point is an (x, y) position in continuous pixel coordinates.
type Point = [2]float64

// ErrDegenerate is wrapped by every error about keypoints that do not
// define a transform: too few, NaN or infinite, or all in one place.
var ErrDegenerate = errors.New("degenerate keypoints")

// Similarity is the 2D similarity transform
//
//	x' = A*x - B*y + Tx
//	y' = B*x + A*y + Ty
//
// i.e. a rotation by atan2(B, A), a uniform scale by hypot(A, B) and a
// translation. It cannot reflect.
type Similarity struct {
	A, B, Tx, Ty float64
}

// Apply maps p.
func (s Similarity) Apply(p Point) Point {
	return Point{s.A*p[0] - s.B*p[1] + s.Tx, s.B*p[0] + s.A*p[1] + s.Ty}
}

// Scale is the factor distances are multiplied by.
func (s Similarity) Scale() float64 { return math.Hypot(s.A, s.B) }

// Angle is the rotation in radians (counter-clockwise in x-right, y-up
// axes; clockwise on screen, where y points down).
func (s Similarity) Angle() float64 { return math.Atan2(s.B, s.A) }

// Inverse returns the transform that undoes s.
func (s Similarity) Inverse() (Similarity, error) {
	d := s.A*s.A + s.B*s.B
	if !(d > 0) || math.IsInf(d, 0) {
		return Similarity{}, fmt.Errorf("%w: transform %+v is not invertible", ErrDegenerate, s)
	}
	a, b := s.A/d, -s.B/d
	return Similarity{A: a, B: b, Tx: -(a*s.Tx - b*s.Ty), Ty: -(b*s.Tx + a*s.Ty)}, nil
}

// Estimate returns the similarity that maps src onto dst with the least
// sum of squared distances (the 2D case of Umeyama's method, which dlib's
// find_similarity_transform also uses). Writing points as complex numbers
// z (src) and w (dst) centred on their means, the optimum is
// a = Σ conj(z)·w / Σ|z|² (a = A + iB) and t = mean(w) - a·mean(z).
// It needs at least two points, all finite, with src and dst each not all
// in one place.
func Estimate(src, dst []Point) (Similarity, error) {
	n := len(src)
	if n != len(dst) {
		return Similarity{}, fmt.Errorf("%w: %d source and %d template points", ErrDegenerate, n, len(dst))
	}
	if n < 2 {
		return Similarity{}, fmt.Errorf("%w: %d points, need at least 2", ErrDegenerate, n)
	}
	var mz, mw Point
	for i := range src {
		for c := 0; c < 2; c++ {
			if !finite(src[i][c]) || !finite(dst[i][c]) {
				return Similarity{}, fmt.Errorf("%w: point %d is %v -> %v", ErrDegenerate, i, src[i], dst[i])
			}
			mz[c] += src[i][c]
			mw[c] += dst[i][c]
		}
	}
	mz[0], mz[1], mw[0], mw[1] = mz[0]/float64(n), mz[1]/float64(n), mw[0]/float64(n), mw[1]/float64(n)
	var varZ, varW, re, im float64
	for i := range src {
		zx, zy := src[i][0]-mz[0], src[i][1]-mz[1]
		wx, wy := dst[i][0]-mw[0], dst[i][1]-mw[1]
		varZ += zx*zx + zy*zy
		varW += wx*wx + wy*wy
		re += zx*wx + zy*wy // Re(conj(z)·w)
		im += zx*wy - zy*wx // Im(conj(z)·w)
	}
	// Spread below a thousandth of a pixel is no spread at all.
	const minSpread = 1e-6
	if varZ < minSpread || varW < minSpread || !finite(varZ) || !finite(varW) {
		return Similarity{}, fmt.Errorf("%w: keypoints (spread %.3g px²) or template (%.3g px²) all in one place", ErrDegenerate, varZ, varW)
	}
	a, b := re/varZ, im/varZ
	if a*a+b*b < 1e-18 {
		return Similarity{}, fmt.Errorf("%w: no similarity maps the keypoints onto the template", ErrDegenerate)
	}
	return Similarity{A: a, B: b, Tx: mw[0] - (a*mz[0] - b*mz[1]), Ty: mw[1] - (b*mz[0] + a*mz[1])}, nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
