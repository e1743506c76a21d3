package capture

import (
	"image"
	"image/color"
)

// RGB is a packed 8-bit RGB image: row y starts at Pix[y*Stride] and holds
// W pixels of R, G, B bytes. It is the layout the detector consumes.
// RGB implements image.Image, so it can be passed to image/png etc.
type RGB struct {
	Pix    []byte
	Stride int
	W, H   int
}

// NewRGB allocates a w×h image with a tight stride (3*w).
func NewRGB(w, h int) *RGB {
	return &RGB{Pix: make([]byte, w*h*3), Stride: w * 3, W: w, H: h}
}

// Row returns the 3*W bytes of row y.
func (m *RGB) Row(y int) []byte { return m.Pix[y*m.Stride : y*m.Stride+3*m.W] }

// Packed returns the pixels as one contiguous H×W×3 slice, copying only if
// the stride has padding.
func (m *RGB) Packed() []byte {
	if m.Stride == 3*m.W {
		return m.Pix[:3*m.W*m.H]
	}
	out := make([]byte, 0, 3*m.W*m.H)
	for y := 0; y < m.H; y++ {
		out = append(out, m.Row(y)...)
	}
	return out
}

// RGBAt returns the pixel at (x, y).
func (m *RGB) RGBAt(x, y int) (r, g, b uint8) {
	i := y*m.Stride + 3*x
	return m.Pix[i], m.Pix[i+1], m.Pix[i+2]
}

// ColorModel implements image.Image.
func (m *RGB) ColorModel() color.Model { return color.RGBAModel }

// Bounds implements image.Image.
func (m *RGB) Bounds() image.Rectangle { return image.Rect(0, 0, m.W, m.H) }

// At implements image.Image (slow; for tests and encoding only).
func (m *RGB) At(x, y int) color.Color {
	if x < 0 || y < 0 || x >= m.W || y >= m.H {
		return color.RGBA{}
	}
	r, g, b := m.RGBAt(x, y)
	return color.RGBA{r, g, b, 255}
}

// FromImage converts any image.Image to packed RGB, with fast paths for
// the types image/jpeg and image/png produce.
func FromImage(src image.Image) *RGB {
	b := src.Bounds()
	w, h := b.Dx(), b.Dy()
	dst := NewRGB(w, h)
	switch s := src.(type) {
	case *image.YCbCr:
		ycbcrToRGB(dst, s)
	case *image.Gray:
		for y := 0; y < h; y++ {
			row := dst.Row(y)
			in := s.Pix[(y)*s.Stride : y*s.Stride+w]
			for x, v := range in {
				row[3*x], row[3*x+1], row[3*x+2] = v, v, v
			}
		}
	case *image.RGBA:
		for y := 0; y < h; y++ {
			row := dst.Row(y)
			in := s.Pix[y*s.Stride : y*s.Stride+4*w]
			for x := 0; x < w; x++ {
				row[3*x], row[3*x+1], row[3*x+2] = in[4*x], in[4*x+1], in[4*x+2]
			}
		}
	case *image.NRGBA:
		// Alpha is dropped (composited over black would darken; faces
		// come from opaque photos).
		for y := 0; y < h; y++ {
			row := dst.Row(y)
			in := s.Pix[y*s.Stride : y*s.Stride+4*w]
			for x := 0; x < w; x++ {
				row[3*x], row[3*x+1], row[3*x+2] = in[4*x], in[4*x+1], in[4*x+2]
			}
		}
	default:
		for y := 0; y < h; y++ {
			row := dst.Row(y)
			for x := 0; x < w; x++ {
				c := color.RGBAModel.Convert(src.At(b.Min.X+x, b.Min.Y+y)).(color.RGBA)
				row[3*x], row[3*x+1], row[3*x+2] = c.R, c.G, c.B
			}
		}
	}
	return dst
}
