package capture

import (
	"bytes"
	"compress/gzip"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"testing"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The fast YCbCr path must agree exactly with image/jpeg + image/color.
func TestDecodeJPEGMatchesStdlib(t *testing.T) {
	for _, name := range []string{"smptebars_640x480_420.jpg", "testsrc2_1280x720_422.jpg", "frames/frame_01.jpg"} {
		data := readTestdata(t, name)
		got, err := DecodeJPEG(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ref, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		b := ref.Bounds()
		if got.W != b.Dx() || got.H != b.Dy() {
			t.Fatalf("%s: size %dx%d, want %v", name, got.W, got.H, b.Size())
		}
		exact := JPEGDecoder() == "image/jpeg"
		var sum int
		for y := 0; y < got.H; y++ {
			for x := 0; x < got.W; x++ {
				c := color.RGBAModel.Convert(ref.At(x, y)).(color.RGBA)
				r, g, bb := got.RGBAt(x, y)
				if exact && (r != c.R || g != c.G || bb != c.B) {
					t.Fatalf("%s: pixel (%d,%d) = %d,%d,%d, want %d,%d,%d", name, x, y, r, g, bb, c.R, c.G, c.B)
				}
				sum += absDiff(int(r), int(c.R)) + absDiff(int(g), int(c.G)) + absDiff(int(bb), int(c.B))
			}
		}
		// libjpeg-turbo (-tags turbojpeg) rounds its IDCT differently.
		if mean := float64(sum) / float64(3*got.W*got.H); mean > 1.5 {
			t.Fatalf("%s (%s): mean difference %.2f from image/jpeg", name, JPEGDecoder(), mean)
		}
	}
}

// ffmpeg's SMPTE bars (recorded frame): the 75% colour bars come out right.
func TestDecodeSMPTEBars(t *testing.T) {
	img, err := DecodeJPEG(readTestdata(t, "smptebars_640x480_420.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	want := [7][3]int{{191, 191, 191}, {191, 191, 0}, {0, 191, 191}, {0, 191, 0}, {191, 0, 191}, {191, 0, 0}, {0, 0, 191}}
	for i, c := range want {
		x := (2*i + 1) * img.W / 14
		r, g, b := img.RGBAt(x, img.H/3)
		if absDiff(int(r), c[0]) > 12 || absDiff(int(g), c[1]) > 12 || absDiff(int(b), c[2]) > 12 {
			t.Errorf("bar %d at x=%d: %d,%d,%d want ~%v", i, x, r, g, b, c)
		}
	}
}

func absDiff(a, b int) int {
	if a > b {
		return a - b
	}
	return b - a
}

// UVC cameras often omit the Huffman tables; the standard ones are used.
func TestDecodeJPEGWithoutHuffmanTables(t *testing.T) {
	src := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for i := range src.Pix {
		src.Pix[i] = byte(i * 7)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, src, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err) // Go's encoder uses exactly the standard tables
	}
	full := buf.Bytes()
	i := bytes.Index(full, []byte{0xff, 0xc4})
	n := int(full[i+2])<<8 | int(full[i+3])
	stripped := append(append([]byte{}, full[:i]...), full[i+2+n:]...)
	if _, err := jpeg.Decode(bytes.NewReader(stripped)); err == nil {
		t.Fatal("test setup: image/jpeg decoded a frame without DHT by itself")
	}
	want, err := DecodeJPEG(full)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeJPEG(stripped)
	if err != nil {
		t.Fatalf("frame without DHT: %v", err)
	}
	if !bytes.Equal(got.Pix, want.Pix) {
		t.Fatal("frame without DHT decoded differently")
	}
}

func TestDecodeCorruptJPEG(t *testing.T) {
	good := readTestdata(t, "smptebars_640x480_420.jpg")
	cases := map[string][]byte{
		"empty":     nil,
		"not jpeg":  []byte("hello world"),
		"truncated": good[:len(good)/2],
		"header":    good[:200],
	}
	garbled := append([]byte{}, good...)
	for i := 700; i < len(garbled)-2; i += 3 {
		garbled[i] = 0xff
	}
	cases["garbled"] = garbled
	for name, data := range cases {
		img, err := Decode(FormatMJPEG, data, 640, 480)
		if name == "garbled" && err == nil {
			// image/jpeg tolerates some entropy damage; it must not crash
			// and must keep the size.
			if img.W != 640 {
				t.Errorf("garbled: %dx%d", img.W, img.H)
			}
			continue
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
}

// refYUV is the float BT.601 limited-range conversion.
func refYUV(y, u, v uint8) [3]int {
	c := 1.164 * (float64(y) - 16)
	d, e := float64(u)-128, float64(v)-128
	f := func(x float64) int { return int(math.Max(0, math.Min(255, math.Round(x)))) }
	return [3]int{f(c + 1.596*e), f(c - 0.392*d - 0.813*e), f(c + 2.017*d)}
}

func TestYUYVToRGB(t *testing.T) {
	// Known points: black, white, 75% red from a colour-bar generator.
	known := []struct {
		y, u, v uint8
		rgb     [3]int
	}{
		{16, 128, 128, [3]int{0, 0, 0}},
		{235, 128, 128, [3]int{255, 255, 255}},
		{126, 128, 128, [3]int{128, 128, 128}},
		{65, 100, 212, [3]int{191, 0, 0}},
	}
	for _, k := range known {
		img := NewRGB(2, 1)
		YUYVToRGB(img, []byte{k.y, k.u, k.y, k.v})
		for px := 0; px < 2; px++ {
			r, g, b := img.RGBAt(px, 0)
			if absDiff(int(r), k.rgb[0]) > 2 || absDiff(int(g), k.rgb[1]) > 2 || absDiff(int(b), k.rgb[2]) > 2 {
				t.Errorf("YUV %d,%d,%d -> %d,%d,%d, want %v", k.y, k.u, k.v, r, g, b, k.rgb)
			}
		}
	}
	// Random data against the float reference, YUYV and UYVY.
	rng := rand.New(rand.NewPCG(1, 2))
	const w, h = 64, 8
	yuyv := make([]byte, w*h*2)
	for i := range yuyv {
		yuyv[i] = byte(rng.IntN(256))
	}
	uyvy := make([]byte, len(yuyv))
	for i := 0; i < len(yuyv); i += 2 {
		uyvy[i], uyvy[i+1] = yuyv[i+1], yuyv[i]
	}
	a, err := Decode(FormatYUYV, yuyv, w, h)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Decode(FormatUYVY, uyvy, w, h)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Pix, b.Pix) {
		t.Fatal("UYVY and YUYV of the same pixels differ")
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := y*w*2 + (x/2)*4
			yy := yuyv[i+2*(x%2)]
			ref := refYUV(yy, yuyv[i+1], yuyv[i+3])
			r, g, bb := a.RGBAt(x, y)
			if absDiff(int(r), ref[0]) > 1 || absDiff(int(g), ref[1]) > 1 || absDiff(int(bb), ref[2]) > 1 {
				t.Fatalf("(%d,%d): %d,%d,%d vs reference %v", x, y, r, g, bb, ref)
			}
		}
	}
}

func TestDecodeRawFormats(t *testing.T) {
	if _, err := Decode(FormatYUYV, make([]byte, 100), 640, 480); !errors.Is(err, ErrCorrupt) {
		t.Errorf("short YUYV: %v", err)
	}
	if _, err := Decode(PixelFormat(0x34363248), nil, 640, 480); !errors.Is(err, ErrUnsupportedFormat) {
		t.Errorf("H264: %v", err)
	}
	g, err := Decode(FormatGrey, []byte{0, 100, 200, 255}, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if r, gg, b := g.RGBAt(1, 1); r != 255 || gg != 255 || b != 255 {
		t.Errorf("grey: %d %d %d", r, gg, b)
	}
	rgb, err := Decode(FormatRGB24, []byte{1, 2, 3, 4, 5, 6}, 2, 1)
	if err != nil || !bytes.Equal(rgb.Packed(), []byte{1, 2, 3, 4, 5, 6}) {
		t.Errorf("rgb24: %v %v", rgb, err)
	}
	if FormatYUYV.String() != "YUYV" || FormatMJPEG.String() != "MJPG" {
		t.Error("FourCC strings")
	}
}

func TestResize(t *testing.T) {
	src := NewRGB(4, 2)
	// Two 2x2 blocks: left averages to 10,20,30 and right to 100,150,200.
	vals := [][3]byte{{0, 0, 0}, {20, 40, 60}, {100, 100, 100}, {100, 200, 300 - 256}}
	for y := 0; y < 2; y++ {
		for x := 0; x < 4; x++ {
			v := vals[(x%2)+2*(x/2)]
			if y == 1 {
				v = vals[((x+1)%2)+2*(x/2)]
			}
			copy(src.Pix[y*src.Stride+3*x:], v[:])
		}
	}
	dst := Resize(src, 2, 1)
	r, g, b := dst.RGBAt(0, 0)
	if r != 10 || g != 20 || b != 30 {
		t.Errorf("left block %d,%d,%d", r, g, b)
	}
	r, g, b = dst.RGBAt(1, 0)
	if r != 100 || g != 150 || b != 72 {
		t.Errorf("right block %d,%d,%d", r, g, b)
	}
	big := NewRGB(1280, 720)
	f := Fit(big, 640, 640)
	if f.W != 640 || f.H != 360 {
		t.Errorf("Fit 1280x720 in 640x640 = %dx%d", f.W, f.H)
	}
	if Fit(f, 1000, 1000) != f {
		t.Error("Fit enlarged or copied an image that fits")
	}
	up := Resize(dst, 4, 2)
	if r, _, _ := up.RGBAt(3, 1); r != 100 {
		t.Errorf("nearest upscale: %d", r)
	}
	// A real frame keeps its colours when shrunk.
	bars, err := DecodeJPEG(readTestdata(t, "smptebars_640x480_420.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	small := Resize(bars, 160, 120)
	r, g, b = small.RGBAt(5*160/14, 40) // cyan bar (third of seven)
	if r > 20 || g < 170 || b < 170 {
		t.Errorf("cyan after downscale: %d,%d,%d", r, g, b)
	}
}

func TestFrameRGBCaches(t *testing.T) {
	f := Frame{Seq: 3, Format: FormatMJPEG, Data: readTestdata(t, "frames/frame_02.jpg")}
	a, err := f.RGB()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := f.RGB()
	if a != b || a.W != 160 || a.H != 120 {
		t.Fatalf("RGB() %p %p %dx%d", a, b, a.W, a.H)
	}
	bad := Frame{Seq: 9, Format: FormatMJPEG, Data: []byte{0xff, 0xd8, 0xff, 0xd9}}
	if _, err := bad.RGB(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("bad frame: %v", err)
	}
}

// A real YUYV frame recorded from the vivid driver (see testdata/README.md):
// 75% colour bars, text overlay on top.
func TestDecodeRecordedVividYUYV(t *testing.T) {
	zr, err := gzip.NewReader(bytes.NewReader(readTestdata(t, "vivid_yuyv_320x180.raw.gz")))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 320*180*2 {
		t.Fatalf("recorded frame has %d bytes", len(raw))
	}
	img, err := Decode(FormatYUYV, raw, 320, 180)
	if err != nil {
		t.Fatal(err)
	}
	want := [8][3]int{{191, 191, 191}, {191, 191, 0}, {0, 191, 191}, {0, 191, 0}, {191, 0, 191}, {191, 0, 0}, {0, 0, 191}, {0, 0, 0}}
	for i, c := range want {
		r, g, b := img.RGBAt((2*i+1)*320/16, 177)
		if absDiff(int(r), c[0]) > 8 || absDiff(int(g), c[1]) > 8 || absDiff(int(b), c[2]) > 8 {
			t.Errorf("bar %d: %d,%d,%d want %v", i, r, g, b, c)
		}
	}
	// The same frame as UYVY (bytes swapped in pairs) decodes identically.
	sw := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 2 {
		sw[i], sw[i+1] = raw[i+1], raw[i]
	}
	img2, err := Decode(FormatUYVY, sw, 320, 180)
	if err != nil || !bytes.Equal(img.Pix, img2.Pix) {
		t.Fatalf("UYVY: %v", err)
	}
	// The same frame with rows padded to 1024 bytes (driver bytesperline).
	padded := make([]byte, 179*1024+640)
	for y := 0; y < 180; y++ {
		copy(padded[y*1024:], raw[y*640:(y+1)*640])
	}
	f := Frame{Format: FormatYUYV, Width: 320, Height: 180, Stride: 1024, Data: padded}
	img3, err := f.RGB()
	if err != nil || !bytes.Equal(img.Pix, img3.Pix) {
		t.Fatalf("padded rows: %v", err)
	}
	if _, err := DecodeStride(FormatYUYV, padded[:len(padded)-1], 320, 180, 1024); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short padded frame: %v", err)
	}
	// Truncated recording: corrupt, not a crash.
	if _, err := Decode(FormatYUYV, raw[:len(raw)-1], 320, 180); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("truncated: %v", err)
	}
}
