package align

import (
	"fmt"
	"math"

	"github.com/facegate/facegate/infer/imageio"
)

// maxSupersample caps the k×k samples averaged per chip pixel.
const maxSupersample = 8

// Crop aligns one face: it estimates the similarity from keypoints (in
// template order, see Template.Select) to tmpl.Points and writes the
// tmpl.Size×tmpl.Size chip as float32 HWC RGB values 0..255 into
// dst[:3*Size*Size], typically one face's slice of the embedder's batch
// buffer. It returns the image->chip transform. It does not allocate.
func Crop(img *imageio.RGB, keypoints []Point, tmpl Template, dst []float32) (Similarity, error) {
	if err := tmpl.Check(); err != nil {
		return Similarity{}, err
	}
	m, err := Estimate(keypoints, tmpl.Points)
	if err != nil {
		return Similarity{}, fmt.Errorf("align: %w", err)
	}
	if err := Warp(img, m, tmpl.Size, dst); err != nil {
		return Similarity{}, err
	}
	return m, nil
}

// CropBatch aligns several faces of one image into consecutive chips of
// batch (face i at batch[i*3*Size*Size:]), the layout of an [N,Size,Size,3]
// input tensor. It returns each face's image->chip transform.
func CropBatch(img *imageio.RGB, faces [][]Point, tmpl Template, batch []float32) ([]Similarity, error) {
	n := 3 * tmpl.Size * tmpl.Size
	if len(batch) < len(faces)*n {
		return nil, fmt.Errorf("align: batch buffer holds %d floats, %d faces of %dx%d need %d", len(batch), len(faces), tmpl.Size, tmpl.Size, len(faces)*n)
	}
	out := make([]Similarity, len(faces))
	for i, kp := range faces {
		m, err := Crop(img, kp, tmpl, batch[i*n:(i+1)*n])
		if err != nil {
			return nil, fmt.Errorf("face %d: %w", i, err)
		}
		out[i] = m
	}
	return out, nil
}

// CropRGB is Crop returning the chip as an 8-bit image (for debugging,
// tests and quality checks).
func CropRGB(img *imageio.RGB, keypoints []Point, tmpl Template) (*imageio.RGB, Similarity, error) {
	if err := tmpl.Check(); err != nil {
		return nil, Similarity{}, err
	}
	buf := make([]float32, 3*tmpl.Size*tmpl.Size)
	m, err := Crop(img, keypoints, tmpl, buf)
	if err != nil {
		return nil, Similarity{}, err
	}
	chip := imageio.NewRGB(tmpl.Size, tmpl.Size)
	Quantize(chip.Pix, buf)
	return chip, m, nil
}

// Quantize rounds float32 chip values to 8-bit pixels, clamped to 0..255,
// into dst[:len(chip)]: the 8-bit chip CropRGB returns, from a chip Crop
// wrote.
func Quantize(dst []uint8, chip []float32) {
	dst = dst[:len(chip)]
	for i, v := range chip {
		dst[i] = uint8(math.Min(255, math.Max(0, float64(v)+0.5)))
	}
}

// Warp writes the size×size chip whose pixel (i, j) is the source colour
// at m⁻¹(i+0.5, j+0.5) (m maps image to chip) into dst[:3*size*size] as
// float32 HWC RGB 0..255. See the package doc for the sampling rules.
func Warp(img *imageio.RGB, m Similarity, size int, dst []float32) error {
	if err := img.Check(); err != nil {
		return fmt.Errorf("align: %w", err)
	}
	if size <= 0 {
		return fmt.Errorf("align: chip size %d", size)
	}
	if len(dst) < 3*size*size {
		return fmt.Errorf("align: output buffer holds %d floats, a %dx%d chip needs %d", len(dst), size, size, 3*size*size)
	}
	inv, err := m.Inverse()
	if err != nil {
		return fmt.Errorf("align: %w", err)
	}
	// Source pixel-index coordinates (centre of pixel x at x) of chip
	// pixel (i, j): u = inv(i+0.5, j+0.5) - 0.5, stepping by (A, B) per i
	// and (-B, A) per j.
	s := inv.Scale() // source pixels per chip pixel
	k := 1
	if s >= 2 { // dlib also samples plainly up to 2x (its pyramid starts there)
		k = min(int(math.Round(s)), maxSupersample)
	}
	var offs [maxSupersample * maxSupersample][2]float64
	nk := 0
	for sy := 0; sy < k; sy++ {
		for sx := 0; sx < k; sx++ {
			dx, dy := (float64(sx)+0.5)/float64(k)-0.5, (float64(sy)+0.5)/float64(k)-0.5
			offs[nk] = [2]float64{inv.A*dx - inv.B*dy, inv.B*dx + inv.A*dy}
			nk++
		}
	}
	norm := 1 / float32(nk)
	smp := sampler{pix: img.Pix, w: img.W, h: img.H}
	// Pixel-index coordinates with all four bilinear taps inside.
	maxU, maxV := float64(img.W-1), float64(img.H-1)
	stride := 3 * img.W
	for j := 0; j < size; j++ {
		c := inv.Apply(Point{0.5, float64(j) + 0.5})
		u, v := c[0]-0.5, c[1]-0.5
		row := dst[3*j*size : 3*(j+1)*size]
		for i := 0; i < 3*size; i += 3 {
			if nk == 1 {
				// Inlined fast path of sampler.at: all four taps inside.
				if u >= 0 && v >= 0 && u < maxU && v < maxV {
					x0, y0 := int(u), int(v)
					fx, fy := float32(u-float64(x0)), float32(v-float64(y0))
					p := img.Pix[3*(y0*img.W+x0):]
					p = p[: stride+6 : stride+6]
					w00, w10, w01, w11 := (1-fx)*(1-fy), fx*(1-fy), (1-fx)*fy, fx*fy
					row[i] = w00*float32(p[0]) + w10*float32(p[3]) + w01*float32(p[stride]) + w11*float32(p[stride+3])
					row[i+1] = w00*float32(p[1]) + w10*float32(p[4]) + w01*float32(p[stride+1]) + w11*float32(p[stride+4])
					row[i+2] = w00*float32(p[2]) + w10*float32(p[5]) + w01*float32(p[stride+2]) + w11*float32(p[stride+5])
				} else {
					row[i], row[i+1], row[i+2] = smp.at(u, v)
				}
			} else {
				var r, g, b float32
				for _, o := range offs[:nk] {
					rr, gg, bb := smp.at(u+o[0], v+o[1])
					r, g, b = r+rr, g+gg, b+bb
				}
				row[i], row[i+1], row[i+2] = r*norm, g*norm, b*norm
			}
			u += inv.A
			v += inv.B
		}
	}
	return nil
}

// sampler reads an RGB image bilinearly at pixel-index coordinates (the
// centre of pixel x is at x); pixels outside the image are black.
type sampler struct {
	pix  []uint8
	w, h int
}

func (s *sampler) at(u, v float64) (r, g, b float32) {
	// Far outside (also NaN-safe: comparisons with NaN are false).
	if !(u > -1 && v > -1 && u < float64(s.w) && v < float64(s.h)) {
		return 0, 0, 0
	}
	x0, y0 := int(u+1)-1, int(v+1)-1 // floor for u, v > -1
	fx, fy := float32(u-float64(x0)), float32(v-float64(y0))
	if x0 >= 0 && y0 >= 0 && x0+1 < s.w && y0+1 < s.h {
		i := 3 * (y0*s.w + x0)
		j := i + 3*s.w
		p := s.pix[i : j+6 : j+6]
		w00, w10, w01, w11 := (1-fx)*(1-fy), fx*(1-fy), (1-fx)*fy, fx*fy
		d := 3 * s.w
		r = w00*float32(p[0]) + w10*float32(p[3]) + w01*float32(p[d]) + w11*float32(p[d+3])
		g = w00*float32(p[1]) + w10*float32(p[4]) + w01*float32(p[d+1]) + w11*float32(p[d+4])
		b = w00*float32(p[2]) + w10*float32(p[5]) + w01*float32(p[d+2]) + w11*float32(p[d+5])
		return r, g, b
	}
	// Border: taps outside the image read 0.
	for dy := 0; dy < 2; dy++ {
		y := y0 + dy
		if y < 0 || y >= s.h {
			continue
		}
		wy := fy
		if dy == 0 {
			wy = 1 - fy
		}
		for dx := 0; dx < 2; dx++ {
			x := x0 + dx
			if x < 0 || x >= s.w {
				continue
			}
			wx := fx
			if dx == 0 {
				wx = 1 - fx
			}
			w := wx * wy
			i := 3 * (y*s.w + x)
			r += w * float32(s.pix[i])
			g += w * float32(s.pix[i+1])
			b += w * float32(s.pix[i+2])
		}
	}
	return r, g, b
}
