package imageio

import (
	"fmt"
	"image"
	"image/color"
)

// RGB is a packed 8-bit RGB image: pixel (x, y) is Pix[3*(y*W+x)+c] for
// c = 0 (R), 1 (G), 2 (B); rows are 3*W bytes with no padding. It
// implements image.Image (slowly, for encoders and tests).
type RGB struct {
	W, H int
	Pix  []uint8
}

// NewRGB allocates a black w×h image.
func NewRGB(w, h int) *RGB {
	if w < 0 || h < 0 {
		panic(fmt.Sprintf("imageio: negative size %dx%d", w, h))
	}
	return &RGB{W: w, H: h, Pix: make([]uint8, 3*w*h)}
}

// Check reports whether Pix holds exactly W*H pixels; every function that
// takes an *RGB calls it before touching pixels.
func (m *RGB) Check() error {
	if m == nil {
		return fmt.Errorf("imageio: nil image")
	}
	if m.W < 0 || m.H < 0 || len(m.Pix) != 3*m.W*m.H {
		return fmt.Errorf("imageio: %dx%d image has %d bytes, want %d", m.W, m.H, len(m.Pix), 3*m.W*m.H)
	}
	return nil
}

// Offset returns the index in Pix of pixel (x, y)'s red byte.
func (m *RGB) Offset(x, y int) int { return 3 * (y*m.W + x) }

// ColorModel implements image.Image.
func (m *RGB) ColorModel() color.Model { return color.RGBAModel }

// Bounds implements image.Image.
func (m *RGB) Bounds() image.Rectangle { return image.Rect(0, 0, m.W, m.H) }

// At implements image.Image; outside the image it is transparent black.
func (m *RGB) At(x, y int) color.Color {
	if x < 0 || y < 0 || x >= m.W || y >= m.H {
		return color.RGBA{}
	}
	i := m.Offset(x, y)
	return color.RGBA{m.Pix[i], m.Pix[i+1], m.Pix[i+2], 255}
}

// Crop returns a copy of the part of m inside r (clipped to m's bounds).
func (m *RGB) Crop(r image.Rectangle) *RGB {
	r = r.Intersect(m.Bounds())
	out := NewRGB(r.Dx(), r.Dy())
	for y := 0; y < out.H; y++ {
		copy(out.Pix[3*y*out.W:3*(y+1)*out.W], m.Pix[m.Offset(r.Min.X, r.Min.Y+y):m.Offset(r.Max.X, r.Min.Y+y)])
	}
	return out
}

// FromImage converts any image.Image to RGB, with fast paths for the types
// the standard decoders and golang.org/x/image/webp return (*image.YCbCr,
// *image.NYCbCrA, *image.Gray, *image.Gray16, *image.RGBA, *image.NRGBA,
// *image.RGBA64, *image.NRGBA64, *image.Paletted). 16-bit samples keep
// their high byte. Alpha is dropped: colour channels are taken as they
// are stored (premultiplied for RGBA), not composited over a background.
func FromImage(src image.Image) *RGB {
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	dst := NewRGB(w, h)
	switch s := src.(type) {
	case *image.YCbCr:
		fromYCbCr(dst, s)
	case *image.NYCbCrA:
		fromYCbCr(dst, &s.YCbCr)
	case *image.Gray:
		for y := 0; y < h; y++ {
			in := s.Pix[s.PixOffset(b.Min.X, b.Min.Y+y):][:w]
			out := dst.Pix[3*y*w:][:3*w]
			for x, v := range in {
				out[3*x], out[3*x+1], out[3*x+2] = v, v, v
			}
		}
	case *image.Gray16:
		for y := 0; y < h; y++ {
			in := s.Pix[s.PixOffset(b.Min.X, b.Min.Y+y):][:2*w]
			out := dst.Pix[3*y*w:][:3*w]
			for x := 0; x < w; x++ {
				v := in[2*x] // high byte of the big-endian sample
				out[3*x], out[3*x+1], out[3*x+2] = v, v, v
			}
		}
	case *image.RGBA:
		fromRGBA(dst, s.Pix, s.Stride, s.PixOffset(b.Min.X, b.Min.Y))
	case *image.RGBA64: // 16-bit PNG: the high byte of each sample
		fromRGBA64(dst, s.Pix, s.Stride, s.PixOffset(b.Min.X, b.Min.Y))
	case *image.NRGBA64:
		fromRGBA64(dst, s.Pix, s.Stride, s.PixOffset(b.Min.X, b.Min.Y))
	case *image.NRGBA:
		fromRGBA(dst, s.Pix, s.Stride, s.PixOffset(b.Min.X, b.Min.Y))
	case *image.Paletted:
		var pal [256][3]uint8
		for i, c := range s.Palette {
			if i == 256 {
				break
			}
			r, g, bb, _ := c.RGBA()
			pal[i] = [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(bb >> 8)}
		}
		for y := 0; y < h; y++ {
			in := s.Pix[s.PixOffset(b.Min.X, b.Min.Y+y):][:w]
			out := dst.Pix[3*y*w:][:3*w]
			for x, v := range in {
				p := pal[v]
				out[3*x], out[3*x+1], out[3*x+2] = p[0], p[1], p[2]
			}
		}
	default:
		for y := 0; y < h; y++ {
			out := dst.Pix[3*y*w:][:3*w]
			for x := 0; x < w; x++ {
				c := color.RGBAModel.Convert(src.At(b.Min.X+x, b.Min.Y+y)).(color.RGBA)
				out[3*x], out[3*x+1], out[3*x+2] = c.R, c.G, c.B
			}
		}
	}
	return dst
}

func fromRGBA(dst *RGB, pix []uint8, stride, off int) {
	w := dst.W
	for y := 0; y < dst.H; y++ {
		in := pix[off+y*stride:][:4*w]
		out := dst.Pix[3*y*w:][:3*w]
		for x := 0; x < w; x++ {
			out[3*x], out[3*x+1], out[3*x+2] = in[4*x], in[4*x+1], in[4*x+2]
		}
	}
}

func fromRGBA64(dst *RGB, pix []uint8, stride, off int) {
	w := dst.W
	for y := 0; y < dst.H; y++ {
		in := pix[off+y*stride:][:8*w]
		out := dst.Pix[3*y*w:][:3*w]
		for x := 0; x < w; x++ {
			out[3*x], out[3*x+1], out[3*x+2] = in[8*x], in[8*x+2], in[8*x+4]
		}
	}
}

// fromYCbCr converts with the JFIF equations in 16.16 fixed point (the
// same rounding as image/color.YCbCrToRGB), for any chroma subsampling.
func fromYCbCr(dst *RGB, s *image.YCbCr) {
	b := s.Rect
	w := dst.W
	for y := 0; y < dst.H; y++ {
		yi := s.YOffset(b.Min.X, b.Min.Y+y)
		out := dst.Pix[3*y*w:][:3*w]
		for x := 0; x < w; x++ {
			ci := s.COffset(b.Min.X+x, b.Min.Y+y)
			r, g, bb := color.YCbCrToRGB(s.Y[yi+x], s.Cb[ci], s.Cr[ci])
			out[3*x], out[3*x+1], out[3*x+2] = r, g, bb
		}
	}
}

// PadMode says what fills the border Pad adds.
type PadMode int

const (
	PadEdge  PadMode = iota // the nearest edge pixel, repeated
	PadBlack                // zeros
)

// Pad returns m with p pixels added on every side, filled as mode says.
// It is for measurements (how a model behaves when a crop may reach
// beyond the frame), not for the frame path.
func Pad(m *RGB, p int, mode PadMode) (*RGB, error) {
	if err := m.Check(); err != nil {
		return nil, err
	}
	if p < 0 || m.W == 0 || m.H == 0 {
		return nil, fmt.Errorf("imageio: pad %dx%d image by %d", m.W, m.H, p)
	}
	o := NewRGB(m.W+2*p, m.H+2*p)
	for y := range o.H {
		sy := min(max(y-p, 0), m.H-1)
		inY := y-p == sy
		for x := range o.W {
			sx := min(max(x-p, 0), m.W-1)
			if mode == PadBlack && (!inY || x-p != sx) {
				continue
			}
			copy(o.Pix[o.Offset(x, y):o.Offset(x, y)+3], m.Pix[m.Offset(sx, sy):m.Offset(sx, sy)+3])
		}
	}
	return o, nil
}
