//go:build turbojpeg && cgo

package turbojpeg

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"testing"

	"github.com/facegate/facegate/capture/internal/benchcpu"
)

func load(t testing.TB, name string) []byte {
	b, err := os.ReadFile("../../testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.Index(b[2:], []byte{0xff, 0xd8, 0xff}); i >= 0 {
		b = b[:i+2]
	}
	return b
}

// libjpeg-turbo and image/jpeg differ only by IDCT/upsampling rounding.
func TestMatchesImageJPEG(t *testing.T) {
	for _, n := range []string{"testsrc2_640x480_422.mjpeg", "testsrc2_1280x720_422.jpg", "smptebars_640x480_420.jpg"} {
		data := load(t, n)
		pix, w, h, err := Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if w != ref.Bounds().Dx() || h != ref.Bounds().Dy() {
			t.Fatalf("%s: %dx%d", n, w, h)
		}
		var sum, maxd int
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				c := color.RGBAModel.Convert(ref.(*image.YCbCr).At(x, y)).(color.RGBA)
				for k, v := range []uint8{c.R, c.G, c.B} {
					d := int(pix[(y*w+x)*3+k]) - int(v)
					if d < 0 {
						d = -d
					}
					sum += d
					maxd = max(maxd, d)
				}
			}
		}
		mean := float64(sum) / float64(w*h*3)
		t.Logf("%s: mean |diff| %.3f, max %d", n, mean, maxd)
		if mean > 2 {
			t.Fatalf("%s: mean difference %.2f too large", n, mean)
		}
	}
	good := load(t, "smptebars_640x480_420.jpg")
	for i := 0; i < 3; i++ {
		if _, _, _, err := Decode([]byte{0xff, 0xd8, 0xff, 0xd9}); err == nil {
			t.Fatal("empty JPEG decoded")
		}
		if _, _, _, err := Decode(good[:len(good)/2]); err == nil {
			t.Fatal("truncated JPEG decoded")
		}
		// A good frame after bad ones still decodes.
		if _, _, _, err := Decode(good); err != nil {
			t.Fatalf("good frame after corrupt ones: %v", err)
		}
	}
}

func BenchmarkTurboJPEG(b *testing.B) {
	for _, c := range []struct{ name, file string }{{"640x480", "testsrc2_640x480_422.mjpeg"}, {"1280x720", "testsrc2_1280x720_422.jpg"}} {
		data := load(b, c.file)
		b.Run(c.name, func(b *testing.B) {
			t := benchcpu.Start()
			for i := 0; i < b.N; i++ {
				if _, _, _, err := Decode(data); err != nil {
					b.Fatal(err)
				}
			}
			t.Stop(b)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}

// Same frames through image/jpeg (YCbCr only, no RGB conversion: this
// flatters image/jpeg), in the same binary for a fair comparison.
func BenchmarkImageJPEG(b *testing.B) {
	for _, c := range []struct{ name, file string }{{"640x480", "testsrc2_640x480_422.mjpeg"}, {"1280x720", "testsrc2_1280x720_422.jpg"}} {
		data := load(b, c.file)
		b.Run(c.name, func(b *testing.B) {
			t := benchcpu.Start()
			for i := 0; i < b.N; i++ {
				if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
			t.Stop(b)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}
