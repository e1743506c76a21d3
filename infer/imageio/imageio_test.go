package imageio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// blocksColour is the colour of block (bx, by) of the test pattern: a 4x3
// grid of solid blocks, all colours distinct (testdata/gen_webp.py uses
// the same formula).
func blocksColour(bx, by int) [3]uint8 {
	return [3]uint8{uint8(40 + 60*bx), uint8(40 + 80*by), uint8(200 - 40*bx - 30*by)}
}

// blocks draws the 4x3 pattern with bs×bs blocks.
func blocks(bs int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, 4*bs, 3*bs))
	for y := 0; y < 3*bs; y++ {
		for x := 0; x < 4*bs; x++ {
			c := blocksColour(x/bs, y/bs)
			m.SetNRGBA(x, y, color.NRGBA{c[0], c[1], c[2], 255})
		}
	}
	return m
}

// checkBlocks compares the centre pixel of every block with the pattern.
func checkBlocks(t *testing.T, img *RGB, bs, tol int) {
	t.Helper()
	if img.W != 4*bs || img.H != 3*bs {
		t.Fatalf("size %dx%d, want %dx%d", img.W, img.H, 4*bs, 3*bs)
	}
	for by := 0; by < 3; by++ {
		for bx := 0; bx < 4; bx++ {
			want := blocksColour(bx, by)
			i := img.Offset(bx*bs+bs/2, by*bs+bs/2)
			for c := 0; c < 3; c++ {
				if d := int(img.Pix[i+c]) - int(want[c]); d > tol || d < -tol {
					t.Fatalf("block (%d,%d) channel %d = %d, want %d±%d", bx, by, c, img.Pix[i+c], want[c], tol)
				}
			}
		}
	}
}

func encodePNG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeGIF(t testing.TB, m image.Image) []byte {
	t.Helper()
	pal := color.Palette{}
	for by := 0; by < 3; by++ {
		for bx := 0; bx < 4; bx++ {
			c := blocksColour(bx, by)
			pal = append(pal, color.RGBA{c[0], c[1], c[2], 255})
		}
	}
	var b bytes.Buffer
	if err := gif.Encode(&b, m, &gif.Options{NumColors: len(pal), Quantizer: nil, Drawer: nil}); err != nil {
		t.Fatal(err)
	}
	// Re-encode with the exact palette so colours survive unchanged.
	p := image.NewPaletted(m.Bounds(), pal)
	for y := m.Bounds().Min.Y; y < m.Bounds().Max.Y; y++ {
		for x := m.Bounds().Min.X; x < m.Bounds().Max.X; x++ {
			p.Set(x, y, m.At(x, y))
		}
	}
	b.Reset()
	if err := gif.Encode(&b, p, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pnm builds a binary PGM (channels 1) or PPM (3) of the pattern with the
// given maxval and header text between the numbers.
func pnm(bs, channels, maxval int, sep string) []byte {
	m := blocks(bs)
	w, h := m.Bounds().Dx(), m.Bounds().Dy()
	magic := "P5"
	if channels == 3 {
		magic = "P6"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s%s%d%s%d%s%d\n", magic, sep, w, sep, h, sep, maxval)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := m.NRGBAAt(x, y)
			vals := []uint8{c.R, c.G, c.B}
			if channels == 1 {
				vals = vals[:1]
			}
			for _, v := range vals {
				s := (int(v)*maxval + 127) / 255
				if maxval > 255 {
					b.WriteByte(byte(s >> 8))
				}
				b.WriteByte(byte(s))
			}
		}
	}
	return b.Bytes()
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeFormats(t *testing.T) {
	grey := image.NewGray(image.Rect(0, 0, 32, 24))
	for i := range grey.Pix {
		grey.Pix[i] = uint8(i)
	}
	rgba := image.NewRGBA(blocks(8).Rect)
	copy(rgba.Pix, blocks(8).Pix)
	deep := image.NewRGBA64(rgba.Rect) // 16-bit PNG
	for y := 0; y < 24; y++ {
		for x := 0; x < 32; x++ {
			c := rgba.RGBAAt(x, y)
			deep.SetRGBA64(x, y, color.RGBA64{uint16(c.R) * 257, uint16(c.G) * 257, uint16(c.B) * 257, 0xFFFF})
		}
	}
	tests := []struct {
		name   string
		data   []byte
		format Format
		bs     int // block size of the pattern; 0 = grey ramp
		tol    int
		redOnl bool // grey files carry the red channel only
	}{
		{"png nrgba", encodePNG(t, blocks(8)), FormatPNG, 8, 0, false},
		{"png rgba", encodePNG(t, rgba), FormatPNG, 8, 0, false},
		{"png grey", encodePNG(t, grey), FormatPNG, 0, 0, false},
		{"png 16-bit", encodePNG(t, deep), FormatPNG, 8, 0, false},
		{"jpeg", encodeJPEG(t, blocks(16)), FormatJPEG, 16, 4, false},
		{"jpeg grey", encodeJPEG(t, grey), FormatJPEG, 0, 2, false},
		{"gif", encodeGIF(t, blocks(8)), FormatGIF, 8, 0, false},
		{"pgm 8-bit", pnm(8, 1, 255, " "), FormatPGM, 8, 0, true},
		{"pgm comments", pnm(8, 1, 255, "\n# a comment\t#x\n  "), FormatPGM, 8, 0, true},
		{"pgm maxval 100", pnm(8, 1, 100, " "), FormatPGM, 8, 2, true},
		{"pgm 16-bit", pnm(8, 1, 65535, "\t"), FormatPGM, 8, 0, true},
		{"pgm 12-bit", pnm(8, 1, 4095, " "), FormatPGM, 8, 0, true},
		{"ppm 8-bit", pnm(8, 3, 255, " "), FormatPPM, 8, 0, false},
		{"ppm 16-bit", pnm(8, 3, 65535, " "), FormatPPM, 8, 0, false},
		{"webp lossless", readTestdata(t, "blocks.lossless.webp"), FormatWebP, 8, 0, false},
		{"webp lossy", readTestdata(t, "blocks.lossy.webp"), FormatWebP, 8, 16, false},
		{"webp lossless alpha", readTestdata(t, "blocks-alpha.lossless.webp"), FormatWebP, 8, 0, false},
		{"webp lossy alpha", readTestdata(t, "blocks-alpha.lossy.webp"), FormatWebP, 8, 16, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, info, err := Decode(bytes.NewReader(tt.data), Limits{})
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if err := img.Check(); err != nil {
				t.Fatal(err)
			}
			if info.Format != tt.format || info.Orientation != 1 || info.Bytes != int64(len(tt.data)) {
				t.Errorf("info %+v, want format %s, orientation 1, %d bytes", info, tt.format, len(tt.data))
			}
			if info.Width != img.W || info.Height != img.H {
				t.Errorf("info size %dx%d, image %dx%d", info.Width, info.Height, img.W, img.H)
			}
			switch {
			case tt.bs == 0:
				if img.W != 32 || img.H != 24 {
					t.Fatalf("size %dx%d", img.W, img.H)
				}
				for i := 0; i < 32*24; i++ {
					for c := 0; c < 3; c++ {
						if d := int(img.Pix[3*i+c]) - int(uint8(i)); d > tt.tol || d < -tt.tol {
							t.Fatalf("pixel %d channel %d = %d, want %d", i, c, img.Pix[3*i+c], uint8(i))
						}
					}
				}
			case tt.redOnl:
				// Grey file of the pattern's red channel: R = G = B = red.
				want := NewRGB(img.W, img.H)
				for y := 0; y < img.H; y++ {
					for x := 0; x < img.W; x++ {
						r := blocksColour(x/tt.bs, y/tt.bs)[0]
						copy(want.Pix[want.Offset(x, y):], []uint8{r, r, r})
					}
				}
				for i := range want.Pix {
					if d := int(img.Pix[i]) - int(want.Pix[i]); d > tt.tol || d < -tt.tol {
						t.Fatalf("byte %d = %d, want %d±%d", i, img.Pix[i], want.Pix[i], tt.tol)
					}
				}
			default:
				checkBlocks(t, img, tt.bs, tt.tol)
			}
		})
	}
}

// pngHeader is a valid PNG signature and IHDR declaring w×h RGB, no data.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 17)
	copy(ihdr, "IHDR")
	binary.BigEndian.PutUint32(ihdr[4:], w)
	binary.BigEndian.PutUint32(ihdr[8:], h)
	ihdr[12], ihdr[13] = 8, 2 // 8-bit RGB
	binary.Write(&b, binary.BigEndian, uint32(13))
	b.Write(ihdr)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(ihdr))
	return b.Bytes()
}

// jpegHeader is SOI and a baseline SOF0 declaring w×h, 3 components.
func jpegHeader(w, h uint16) []byte {
	b := []byte{0xFF, 0xD8, 0xFF, 0xC0, 0, 17, 8, byte(h >> 8), byte(h), byte(w >> 8), byte(w), 3,
		1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1}
	// Without a JFIF APP0 image/jpeg reads on to the start of scan.
	return append(b, 0xFF, 0xDA, 0, 12, 3, 1, 0, 2, 0x11, 3, 0x11, 0, 63, 0)
}

// gifHeader is a GIF89a logical screen descriptor of w×h.
func gifHeader(w, h uint16) []byte {
	b := []byte("GIF89a")
	b = binary.LittleEndian.AppendUint16(b, w)
	b = binary.LittleEndian.AppendUint16(b, h)
	return append(b, 0, 0, 0)
}

// webpHeader is a RIFF WEBP file with only a VP8X chunk for a w×h canvas.
func webpHeader(w, h uint32) []byte {
	chunk := []byte("VP8X")
	chunk = binary.LittleEndian.AppendUint32(chunk, 10)
	chunk = append(chunk, 0, 0, 0, 0, byte(w-1), byte((w-1)>>8), byte((w-1)>>16), byte(h-1), byte((h-1)>>8), byte((h-1)>>16))
	b := []byte("RIFF")
	b = binary.LittleEndian.AppendUint32(b, uint32(4+len(chunk)))
	b = append(b, "WEBP"...)
	return append(b, chunk...)
}

func TestDecodeTooLarge(t *testing.T) {
	// 8000x6000 = 48 megapixels, only the header present: the error must
	// come from the header check, before any pixel data is needed.
	tests := []struct {
		name string
		data []byte
		lim  Limits
	}{
		{"png 48MP", pngHeader(8000, 6000), Limits{}},
		{"jpeg 48MP", jpegHeader(8000, 6000), Limits{}},
		{"gif 48MP", gifHeader(8000, 6000), Limits{}},
		{"webp 48MP", webpHeader(8000, 6000), Limits{}},
		{"pgm 48MP", []byte("P5 8000 6000 255\n"), Limits{}},
		{"ppm 48MP", []byte("P6\n8000\n6000\n65535\n"), Limits{}},
		{"png over custom limit", encodePNG(t, blocks(8)), Limits{MaxPixels: 32*24 - 1}},
		{"pgm over custom limit", pnm(8, 1, 255, " "), Limits{MaxPixels: 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, info, err := DecodeBytes(tt.data, tt.lim)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("err = %v, want ErrTooLarge", err)
			}
			var tl *TooLargeError
			if !errors.As(err, &tl) || tl.Width != info.Width || tl.Height != info.Height || tl.Width == 0 {
				t.Fatalf("err %#v, info %+v: want a TooLargeError with the declared size", err, info)
			}
			if !strings.Contains(err.Error(), "megapixels") {
				t.Errorf("error %q does not say megapixels", err)
			}
			if a := after.TotalAlloc - before.TotalAlloc; a > 1<<20 {
				t.Errorf("allocated %d bytes before rejecting", a)
			}
		})
	}
	t.Run("bytes", func(t *testing.T) {
		data := encodePNG(t, blocks(8))
		_, _, err := Decode(bytes.NewReader(data), Limits{MaxBytes: int64(len(data) - 1)})
		var tl *TooLargeError
		if !errors.As(err, &tl) || !errors.Is(err, ErrTooLarge) || tl.Bytes != int64(len(data)) {
			t.Fatalf("err = %v, want a byte-limit TooLargeError", err)
		}
		if _, _, err := Decode(bytes.NewReader(data), Limits{MaxBytes: int64(len(data))}); err != nil {
			t.Fatalf("at the byte limit: %v", err)
		}
	})
	t.Run("default limit passes 40MP", func(t *testing.T) {
		if _, _, err := DecodeBytes(pngHeader(8000, 5000), Limits{}); errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrFormat) {
			t.Fatalf("40 MP header without data: err = %v, want ErrFormat (not too large)", err)
		}
	})
}

func TestDecodeCorrupt(t *testing.T) {
	png := encodePNG(t, blocks(8))
	jpg := encodeJPEG(t, blocks(16))
	gf := encodeGIF(t, blocks(8))
	webp := readTestdata(t, "blocks.lossy.webp")
	webpLL := readTestdata(t, "blocks.lossless.webp")
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"text", []byte("hello, this is not an image")},
		{"ascii pgm", []byte("P2 2 2 255\n0 1 2 3\n")},
		{"bmp", []byte("BM\x00\x00\x00\x00")},
		{"png truncated", png[:len(png)/2]},
		{"png header only", png[:8]},
		{"png bad crc", func() []byte { b := bytes.Clone(png); b[30] ^= 0xFF; return b }()},
		{"jpeg truncated", jpg[:len(jpg)/2]},
		{"jpeg soi only", jpg[:3]},
		{"gif truncated", gf[:len(gf)-8]},
		{"webp truncated", webp[:len(webp)-10]},
		{"webp lossless truncated", webpLL[:len(webpLL)/2]},
		{"webp riff only", webp[:12]},
		{"png zero size", pngHeader(0, 10)},
		{"pgm truncated data", pnm(8, 1, 255, " ")[:100]},
		{"pgm 16-bit truncated", pnm(8, 1, 1000, " ")[:300]},
		{"pgm no maxval", []byte("P5 2 2\n")},
		{"pgm negative", []byte("P5 -2 2 255\nabcd")},
		{"pgm maxval 0", []byte("P5 2 2 0\nabcd")},
		{"pgm maxval 70000", []byte("P5 2 2 70000\nabcdefgh")},
		{"pgm no whitespace after maxval", []byte("P5 2 2 255")},
		{"pgm letters", []byte("P5 two 2 255\nabcd")},
		{"pgm huge number", []byte("P5 99999999999999999999 2 255\nab")},
		{"pgm zero width", []byte("P5 0 2 255\n")},
		{"pgm comment to eof", []byte("P5 2 # 2 255\n")},
		{"pgm numbers run together", []byte("P5 2 2 255#x\nabcd")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, _, err := DecodeBytes(tt.data, Limits{})
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("err = %v (image %v), want ErrFormat", err, img != nil)
			}
		})
	}
}

// exifJPEG inserts an APP1 Exif segment with orientation o (as a SHORT,
// after another IFD0 entry) right after the SOI of jpg; a JFIF APP0 goes
// first when jfif is set.
func exifJPEG(jpg []byte, o uint16, bo binary.AppendByteOrder, jfif bool) []byte {
	var tiff []byte
	if bo == binary.LittleEndian {
		tiff = []byte("II*\x00")
	} else {
		tiff = []byte("MM\x00*")
	}
	tiff = bo.AppendUint32(tiff, 8)
	tiff = bo.AppendUint16(tiff, 2)               // entries
	tiff = bo.AppendUint16(tiff, 0x010F)          // Make
	tiff = bo.AppendUint16(tiff, 2)               // ASCII
	tiff = bo.AppendUint32(tiff, 4)               // count
	tiff = append(tiff, 'a', 'b', 'c', 0)         // inline value
	tiff = bo.AppendUint16(tiff, 0x0112)          // Orientation
	tiff = bo.AppendUint16(tiff, 3)               // SHORT
	tiff = bo.AppendUint32(tiff, 1)               // count
	tiff = append(bo.AppendUint16(tiff, o), 0, 0) // value, padded
	tiff = bo.AppendUint32(tiff, 0)               // no next IFD
	seg := append([]byte("Exif\x00\x00"), tiff...)
	app1 := append([]byte{0xFF, 0xE1}, byte((len(seg)+2)>>8), byte(len(seg)+2))
	app1 = append(app1, seg...)
	out := append([]byte{}, jpg[:2]...)
	if jfif {
		out = append(out, 0xFF, 0xE0, 0, 16, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0)
	}
	out = append(out, app1...)
	return append(out, jpg[2:]...)
}

// Naive reference transforms for the orientation test.
func rot90cw(m *RGB) *RGB {
	out := NewRGB(m.H, m.W)
	for y := 0; y < out.H; y++ {
		for x := 0; x < out.W; x++ {
			// the stored left column becomes the top row, read bottom-up
			copy(out.Pix[out.Offset(x, y):][:3], m.Pix[m.Offset(y, m.H-1-x):][:3])
		}
	}
	return out
}

func flipH(m *RGB) *RGB {
	out := NewRGB(m.W, m.H)
	for y := 0; y < m.H; y++ {
		for x := 0; x < m.W; x++ {
			copy(out.Pix[out.Offset(x, y):][:3], m.Pix[m.Offset(m.W-1-x, y):][:3])
		}
	}
	return out
}

func flipV(m *RGB) *RGB { return rot90cw(rot90cw(flipH(m))) }

// upright applies EXIF orientation o by composing the naive transforms:
// 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 CW, 7
// transverse, 8 rotate 90 CCW (EXIF 2.3, tag 0x0112).
func upright(m *RGB, o int) *RGB {
	switch o {
	case 2:
		return flipH(m)
	case 3:
		return rot90cw(rot90cw(m))
	case 4:
		return flipV(m)
	case 5:
		return flipH(rot90cw(m))
	case 6:
		return rot90cw(m)
	case 7:
		return flipV(rot90cw(m))
	case 8:
		return rot90cw(rot90cw(rot90cw(m)))
	}
	return m
}

func TestOrientExact(t *testing.T) {
	// 4x3 image, pixel value = index.
	m := NewRGB(4, 3)
	for i := 0; i < 12; i++ {
		m.Pix[3*i], m.Pix[3*i+1], m.Pix[3*i+2] = uint8(i), uint8(100+i), uint8(200+i)
	}
	red := func(m *RGB) []uint8 {
		var out []uint8
		for i := 0; i < m.W*m.H; i++ {
			out = append(out, m.Pix[3*i])
		}
		return out
	}
	// Stored:  0  1  2  3
	//          4  5  6  7
	//          8  9 10 11
	want := map[int][]uint8{
		1: {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11},
		2: {3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8},
		3: {11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0},
		4: {8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3},
		5: {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11},
		6: {8, 4, 0, 9, 5, 1, 10, 6, 2, 11, 7, 3},
		7: {11, 7, 3, 10, 6, 2, 9, 5, 1, 8, 4, 0},
		8: {3, 7, 11, 2, 6, 10, 1, 5, 9, 0, 4, 8},
	}
	for o := 1; o <= 8; o++ {
		got := Orient(m, o)
		if o >= 5 && (got.W != 3 || got.H != 4) || o < 5 && (got.W != 4 || got.H != 3) {
			t.Fatalf("orientation %d: size %dx%d", o, got.W, got.H)
		}
		if g := red(got); !bytes.Equal(g, want[o]) {
			t.Errorf("orientation %d: %v, want %v", o, g, want[o])
		}
		if g, w := red(got), red(upright(m, o)); !bytes.Equal(g, w) {
			t.Errorf("orientation %d: %v, naive reference %v", o, g, w)
		}
		for i := 0; i < 12; i++ { // channels travel together
			if got.Pix[3*i+1] != got.Pix[3*i]+100 || got.Pix[3*i+2] != got.Pix[3*i]+200 {
				t.Fatalf("orientation %d: channels of pixel %d mixed up", o, i)
			}
		}
	}
	if Orient(m, 0) != m || Orient(m, 9) != m {
		t.Error("invalid orientations must return the image unchanged")
	}
}

func TestDecodeExifOrientation(t *testing.T) {
	const bs = 16
	plain := encodeJPEG(t, blocks(bs))
	ref, _, err := DecodeBytes(plain, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for o := 1; o <= 8; o++ {
		for _, bo := range []binary.AppendByteOrder{binary.LittleEndian, binary.BigEndian} {
			for _, jfif := range []bool{false, true} {
				t.Run(fmt.Sprintf("o%d/%v/jfif=%v", o, bo, jfif), func(t *testing.T) {
					data := exifJPEG(plain, uint16(o), bo, jfif)
					if got := ExifOrientation(data); got != o {
						t.Fatalf("ExifOrientation = %d, want %d", got, o)
					}
					img, info, err := DecodeBytes(data, Limits{})
					if err != nil {
						t.Fatal(err)
					}
					if info.Orientation != o || info.Width != 4*bs || info.Height != 3*bs {
						t.Fatalf("info %+v", info)
					}
					want := upright(ref, o)
					if img.W != want.W || img.H != want.H || !bytes.Equal(img.Pix, want.Pix) {
						t.Fatalf("orientation %d not applied as EXIF defines", o)
					}
				})
			}
		}
	}
}

func TestExifOrientationMalformed(t *testing.T) {
	plain := encodeJPEG(t, blocks(8))
	good := exifJPEG(plain, 6, binary.BigEndian, false)
	tests := []struct {
		name string
		data []byte
		want int
	}{
		{"no exif", plain, 1},
		{"good", good, 6},
		{"value 0", exifJPEG(plain, 0, binary.BigEndian, false), 1},
		{"value 9", exifJPEG(plain, 9, binary.LittleEndian, false), 1},
		{"truncated segment", good[:20], 1},
		{"segment length past end", func() []byte { b := bytes.Clone(good[:40]); return b }(), 1},
		{"bad tiff magic", func() []byte { b := bytes.Clone(good); b[10] = 'X'; return b }(), 1},
		{"ifd offset past end", func() []byte { b := bytes.Clone(good); b[17] = 0xF0; return b }(), 1},
		{"not jpeg", []byte("hello"), 1},
		{"empty", nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExifOrientation(tt.data); got != tt.want {
				t.Fatalf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestFromImage(t *testing.T) {
	src := blocks(8)
	want := FromImage(src)
	checkBlocks(t, want, 8, 0)
	r := image.Rect(8, 8, 24, 24) // a sub-image with a non-zero origin
	ycc := image.NewYCbCr(src.Rect, image.YCbCrSubsampleRatio444)
	for y := 0; y < 24; y++ {
		for x := 0; x < 32; x++ {
			c := src.NRGBAAt(x, y)
			yy, cb, cr := color.RGBToYCbCr(c.R, c.G, c.B)
			ycc.Y[ycc.YOffset(x, y)], ycc.Cb[ycc.COffset(x, y)], ycc.Cr[ycc.COffset(x, y)] = yy, cb, cr
		}
	}
	pal := image.NewPaletted(src.Rect, palette.Plan9)
	for y := 0; y < 24; y++ {
		for x := 0; x < 32; x++ {
			pal.Set(x, y, src.At(x, y))
		}
	}
	g16 := image.NewGray16(src.Rect)
	for y := 0; y < 24; y++ {
		for x := 0; x < 32; x++ {
			g16.SetGray16(x, y, color.Gray16{uint16(src.NRGBAAt(x, y).R) * 257})
		}
	}
	n64 := image.NewNRGBA64(src.Rect)
	r64 := image.NewRGBA64(src.Rect)
	for y := 0; y < 24; y++ {
		for x := 0; x < 32; x++ {
			c := src.NRGBAAt(x, y)
			c64 := color.RGBA64{uint16(c.R)<<8 | 0x7F, uint16(c.G)<<8 | 0x80, uint16(c.B) << 8, 0xFFFF}
			n64.SetNRGBA64(x, y, color.NRGBA64(c64))
			r64.SetRGBA64(x, y, c64)
		}
	}
	for _, tt := range []struct {
		name string
		img  image.Image
		tol  int
	}{
		{"nrgba64", n64.SubImage(r), 0},
		{"rgba64", r64.SubImage(r), 0},
		{"nrgba", src.SubImage(r), 0},
		{"ycbcr", ycc.SubImage(r), 2},
		{"paletted", pal.SubImage(r), 40},
		{"generic", image.NewUniform(color.RGBA{1, 2, 3, 255}), 0},
		{"gray16", g16.SubImage(r), 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "generic" {
				got := FromImage(&limited{tt.img, image.Rect(0, 0, 2, 2)})
				if !bytes.Equal(got.Pix, bytes.Repeat([]byte{1, 2, 3}, 4)) {
					t.Fatalf("%v", got.Pix)
				}
				return
			}
			got := FromImage(tt.img)
			if got.W != 16 || got.H != 16 {
				t.Fatalf("size %dx%d", got.W, got.H)
			}
			for y := 0; y < 16; y++ {
				for x := 0; x < 16; x++ {
					w := want.Pix[want.Offset(x+8, y+8):][:3]
					if tt.name == "gray16" {
						w = []uint8{w[0], w[0], w[0]}
					}
					g := got.Pix[got.Offset(x, y):][:3]
					for c := 0; c < 3; c++ {
						if d := int(g[c]) - int(w[c]); d > tt.tol || d < -tt.tol {
							t.Fatalf("(%d,%d) = %v, want %v", x, y, g, w)
						}
					}
				}
			}
		})
	}
}

type limited struct {
	image.Image
	r image.Rectangle
}

func (l *limited) Bounds() image.Rectangle { return l.r }

func TestResize(t *testing.T) {
	src := NewRGB(4, 4)
	for i := 0; i < 16; i++ {
		src.Pix[3*i], src.Pix[3*i+1], src.Pix[3*i+2] = uint8(16*i), 50, uint8(255-16*i)
	}
	t.Run("area 2x", func(t *testing.T) {
		got, err := Resize(src, 2, 2)
		if err != nil {
			t.Fatal(err)
		}
		// Each output pixel is the mean of a 2x2 block: indices (0,1,4,5) etc.
		for oy := 0; oy < 2; oy++ {
			for ox := 0; ox < 2; ox++ {
				i0 := 8*oy + 2*ox
				mean := float64(16*(i0+i0+1+i0+4+i0+5)) / 4
				if g := got.Pix[got.Offset(ox, oy)]; int(g) != int(mean+0.5) {
					t.Errorf("(%d,%d) red = %d, want %.1f", ox, oy, g, mean)
				}
				if got.Pix[got.Offset(ox, oy)+1] != 50 {
					t.Errorf("constant channel changed")
				}
			}
		}
	})
	t.Run("area fractional keeps the mean", func(t *testing.T) {
		big := FromImage(blocks(9)) // 36x27
		got, err := Resize(big, 10, 7)
		if err != nil {
			t.Fatal(err)
		}
		if d := meanRed(got) - meanRed(big); d > 1 || d < -1 {
			t.Errorf("mean red %.2f -> %.2f", meanRed(big), meanRed(got))
		}
	})
	t.Run("enlarge", func(t *testing.T) {
		got, err := Resize(src, 8, 8)
		if err != nil {
			t.Fatal(err)
		}
		// Output pixel 1 centre maps to source x = 0.25: bilinear between
		// source pixels 0 (red 0) and 1 (16) with weight 0.25 -> 4.
		if g := got.Pix[got.Offset(1, 0)]; g != 4 {
			t.Errorf("red at (1,0) = %d, want 4", g)
		}
		if g := got.Pix[got.Offset(0, 0)]; g != 0 {
			t.Errorf("red at (0,0) = %d, want 0 (edge clamped)", g)
		}
	})
	t.Run("identity copies", func(t *testing.T) {
		got, err := Resize(src, 4, 4)
		if err != nil || !bytes.Equal(got.Pix, src.Pix) || &got.Pix[0] == &src.Pix[0] {
			t.Fatalf("identity resize: %v", err)
		}
	})
	t.Run("errors", func(t *testing.T) {
		if _, err := Resize(src, 0, 3); err == nil {
			t.Error("zero width accepted")
		}
		if _, err := Resize(&RGB{W: 3, H: 3, Pix: make([]uint8, 5)}, 2, 2); err == nil {
			t.Error("inconsistent image accepted")
		}
	})
}

func meanRed(m *RGB) float64 {
	var s float64
	for i := 0; i < len(m.Pix); i += 3 {
		s += float64(m.Pix[i])
	}
	return s / float64(m.W*m.H)
}

func TestToFloat32(t *testing.T) {
	img := FromImage(blocks(2))
	buf := make([]float32, 0, 4096)
	out := ToFloat32(buf, img)
	if len(out) != 3*img.W*img.H || &out[0] != &buf[:1][0] {
		t.Fatalf("len %d or not written in place", len(out))
	}
	for i, v := range img.Pix {
		if out[i] != float32(v) {
			t.Fatalf("element %d = %v, want %d", i, out[i], v)
		}
	}
	if a := testing.AllocsPerRun(10, func() { ToFloat32(buf, img) }); a != 0 {
		t.Errorf("%v allocations with a big enough buffer", a)
	}
	if got := ToFloat32(nil, img); len(got) != len(img.Pix) {
		t.Errorf("nil dst: len %d", len(got))
	}
}

// noise is a w×h image of deterministic pseudo-random pixels.
func noise(w, h int, seed uint32) *RGB {
	img := NewRGB(w, h)
	for i := range img.Pix {
		seed = seed*1664525 + 1013904223
		img.Pix[i] = uint8(seed >> 24)
	}
	return img
}

// padded is img framed by pad black pixels on every side.
func padded(img *RGB, pad int) *RGB {
	out := NewRGB(img.W+2*pad, img.H+2*pad)
	for y := 0; y < img.H; y++ {
		copy(out.Pix[out.Offset(pad, y+pad):], img.Pix[3*y*img.W:3*(y+1)*img.W])
	}
	return out
}

func TestResizerMatchesResize(t *testing.T) {
	var r Resizer // one Resizer across all cases: its reuse must not leak state
	for _, c := range []struct{ sw, sh, pad, w, h int }{
		{640, 480, 0, 128, 96},
		{1280, 720, 0, 256, 144},
		{250, 250, 0, 128, 128},
		{96, 72, 0, 128, 96}, // enlarge
		{40, 40, 0, 40, 40},  // same size
		{640, 480, 160, 128, 107},
		{250, 250, 63, 128, 128},
		{30, 20, 7, 50, 40},    // padded and enlarged
		{640, 480, 0, 128, 96}, // back to the first sizes
	} {
		src := noise(c.sw, c.sh, uint32(c.sw*c.h+c.pad))
		want, err := Resize(padded(src, c.pad), c.w, c.h)
		if err != nil {
			t.Fatal(err)
		}
		// Written inside a larger buffer at a stride, as into a letterbox.
		stride := 3 * (c.w + 5)
		dst := make([]float32, stride*(c.h+2))
		for i := range dst {
			dst[i] = -1
		}
		off := stride + 6
		if err := r.Float32(dst[off:], stride, src, c.pad, c.w, c.h); err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		for y := 0; y < c.h+2; y++ {
			for x := 0; x < stride; x++ {
				got := dst[y*stride+x]
				inside := y >= 1 && y <= c.h && x >= 6 && x < 6+3*c.w
				switch {
				case inside && got != float32(want.Pix[3*(y-1)*c.w+x-6]):
					t.Fatalf("%+v: value (%d,%d) = %v, Resize gives %d", c, x, y, got, want.Pix[3*(y-1)*c.w+x-6])
				case !inside && got != -1:
					t.Fatalf("%+v: wrote outside the image at (%d,%d)", c, x, y)
				}
			}
		}
	}
}

func TestResizerReuse(t *testing.T) {
	src := noise(640, 480, 1)
	dst := make([]float32, 3*128*96)
	var r Resizer
	if err := r.Float32(dst, 3*128, src, 0, 128, 96); err != nil {
		t.Fatal(err)
	}
	first := slices.Clone(dst)
	if a := testing.AllocsPerRun(5, func() {
		if err := r.Float32(dst, 3*128, src, 0, 128, 96); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("%v allocations per call with the same sizes", a)
	}
	if !slices.Equal(first, dst) {
		t.Error("a reused Resizer gave different values")
	}
	for _, c := range []struct {
		name              string
		dst               []float32
		stride, pad, w, h int
	}{
		{"short buffer", dst[:100], 3 * 128, 0, 128, 96},
		{"stride under a row", dst, 3*128 - 1, 0, 128, 96},
		{"negative padding", dst, 3 * 128, -1, 128, 96},
		{"zero width", dst, 3 * 128, 0, 0, 96},
	} {
		if err := r.Float32(c.dst, c.stride, src, c.pad, c.w, c.h); err == nil {
			t.Errorf("%s accepted", c.name)
		}
	}
}

func FuzzDecode(f *testing.F) {
	seeds := [][]byte{
		encodePNG(f, blocks(2)),
		encodeJPEG(f, blocks(2)),
		encodeGIF(f, blocks(2)),
		pnm(2, 1, 255, " "),
		pnm(2, 1, 1000, "\n#c\n"),
		pnm(2, 3, 255, " "),
		readTestdata(f, "blocks.lossless.webp"),
		readTestdata(f, "blocks.lossy.webp"),
		readTestdata(f, "blocks-alpha.lossy.webp"),
		exifJPEG(encodeJPEG(f, blocks(2)), 6, binary.BigEndian, true),
		pngHeader(8000, 6000),
		webpHeader(8000, 6000),
	}
	for _, s := range seeds {
		f.Add(s)
		f.Add(s[:len(s)/2])
		f.Add(s[:len(s)-1])
	}
	const maxPixels = 1 << 16
	f.Fuzz(func(t *testing.T, data []byte) {
		img, info, err := DecodeBytes(data, Limits{MaxPixels: maxPixels, MaxBytes: 1 << 20})
		if err != nil {
			if img != nil {
				t.Fatal("image returned with an error")
			}
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error %v wraps neither ErrFormat nor ErrTooLarge", err)
			}
			return
		}
		if err := img.Check(); err != nil {
			t.Fatal(err)
		}
		if img.W*img.H > maxPixels || img.W*img.H == 0 || info.Width*info.Height > maxPixels {
			t.Fatalf("%dx%d image (declared %dx%d) passed a %d pixel limit", img.W, img.H, info.Width, info.Height, maxPixels)
		}
	})
}

func benchmarkResize(b *testing.B, sw, sh, w, h int) {
	src := NewRGB(sw, sh)
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 7)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(src.Pix)))
	for b.Loop() {
		if _, err := Resize(src, w, h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkResize1080pTo256(b *testing.B) { benchmarkResize(b, 1920, 1080, 256, 144) }
func BenchmarkResize720pTo128(b *testing.B)  { benchmarkResize(b, 1280, 720, 128, 72) }
func BenchmarkResize96To128Up(b *testing.B)  { benchmarkResize(b, 96, 96, 128, 128) }

func BenchmarkDecodeJPEG720p(b *testing.B) {
	m := image.NewNRGBA(image.Rect(0, 0, 1280, 720))
	for i := range m.Pix {
		m.Pix[i] = uint8(i*13 + i/4096)
	}
	data := encodeJPEG(b, m)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeBytes(data, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
