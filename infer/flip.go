package infer

import (
	"fmt"
	"math"
)

// Flip test-time augmentation (issue 17, docs/accuracy.md "Flip test-time
// augmentation"): with flip on, an Embedder embeds every aligned chip and
// its horizontal mirror in the same session run (one batch of 2n rows, so
// the kept input tensors of feeds.go serve it like any other batch), sums
// the two embeddings and L2-normalises the sum. A face and its mirror image
// then get the same embedding. It costs about twice the embedding compute;
// whether it is worth it is measured, not assumed, and it is off by default.

// SetFlip turns flip test-time augmentation on or off. Call it before the
// Embedder is used: it is not safe concurrently with EmbedChips.
func (e *Embedder) SetFlip(on bool) { e.flip = on }

// Flip reports whether flip test-time augmentation is on.
func (e *Embedder) Flip() bool { return e.flip }

// MirrorChip writes the horizontal mirror of the size x size RGB chip src
// into dst (both size*size*3 values, row-major, channels last).
func MirrorChip(dst, src []float32, size int) {
	row := 3 * size
	for y := range size {
		s, d := src[y*row:(y+1)*row], dst[y*row:(y+1)*row]
		for x := range size {
			m := 3 * (size - 1 - x)
			d[3*x], d[3*x+1], d[3*x+2] = s[m], s[m+1], s[m+2]
		}
	}
}

// embedFlipped embeds n chips with their mirrors in one run of 2n rows:
// the chips, then their mirrors in the same order; row i's embedding is
// rows i and n+i summed and L2-normalised.
func (e *Embedder) embedFlipped(chips []float32, n int) ([][]float32, error) {
	cl := e.ChipLen()
	buf := e.getChips(2 * n)
	defer e.putChips(buf)
	copy(buf.chips[:n*cl], chips[:n*cl])
	for i := range n {
		MirrorChip(buf.chips[(n+i)*cl:(n+i+1)*cl], chips[i*cl:(i+1)*cl], e.size)
	}
	both, err := e.embedRows(buf.chips, 2*n)
	if err != nil {
		return nil, fmt.Errorf("flip: %w", err)
	}
	res := make([][]float32, n)
	for i := range res {
		a, b := both[i], both[n+i]
		v := make([]float32, len(a))
		var s float64
		for j := range a {
			v[j] = a[j] + b[j]
			s += float64(v[j]) * float64(v[j])
		}
		if s == 0 {
			return nil, fmt.Errorf("embed: flip: chip %d and its mirror have opposite embeddings", i)
		}
		k := 1 / math.Sqrt(s)
		for j := range v {
			v[j] = float32(float64(v[j]) * k)
		}
		res[i] = v
	}
	return res, nil
}
