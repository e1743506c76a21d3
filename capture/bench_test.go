package capture

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"testing"

	"github.com/facegate/facegate/capture/internal/benchcpu"
)

// firstJPEG returns the first frame of an MJPEG stream file.
func firstJPEG(b testing.TB, name string) []byte {
	data := readTestdata(b, name)
	if i := bytes.Index(data[2:], []byte{0xff, 0xd8, 0xff}); i >= 0 {
		return data[:i+2]
	}
	return data
}

func benchFrames(b *testing.B) map[string][]byte {
	return map[string][]byte{
		"640x480":  firstJPEG(b, "testsrc2_640x480_422.mjpeg"),
		"1280x720": readTestdata(b, "testsrc2_1280x720_422.jpg"),
	}
}

func reportFPS(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "frames/s")
	}
}

// MJPEG frame -> packed RGB, the full decode path (image/jpeg + our
// YCbCr conversion).
func BenchmarkDecodeMJPEG(b *testing.B) {
	for _, size := range []string{"640x480", "1280x720"} {
		data := benchFrames(b)[size]
		b.Run(size, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			t := benchcpu.Start()
			for i := 0; i < b.N; i++ {
				if _, err := DecodeJPEG(data); err != nil {
					b.Fatal(err)
				}
			}
			t.Stop(b)
			reportFPS(b)
		})
	}
}

// image/jpeg alone (YCbCr planes, no RGB), to see what the conversion adds.
func BenchmarkStdlibJPEGOnly(b *testing.B) {
	for _, size := range []string{"640x480", "1280x720"} {
		data := benchFrames(b)[size]
		b.Run(size, func(b *testing.B) {
			t := benchcpu.Start()
			for i := 0; i < b.N; i++ {
				if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
			t.Stop(b)
			reportFPS(b)
		})
	}
}

func BenchmarkYUYVToRGB(b *testing.B) {
	for _, sz := range [][2]int{{640, 480}, {1280, 720}} {
		w, h := sz[0], sz[1]
		src := make([]byte, w*h*2)
		for i := range src {
			src[i] = byte(i * 31)
		}
		dst := NewRGB(w, h)
		b.Run(fmt.Sprintf("%dx%d", w, h), func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			t := benchcpu.Start()
			for i := 0; i < b.N; i++ {
				YUYVToRGB(dst, src)
			}
			t.Stop(b)
			reportFPS(b)
		})
	}
}

// Downscale for the detector.
func BenchmarkResize(b *testing.B) {
	for _, c := range [][4]int{{1280, 720, 640, 360}, {640, 480, 320, 240}} {
		src := NewRGB(c[0], c[1])
		for i := range src.Pix {
			src.Pix[i] = byte(i)
		}
		b.Run(fmt.Sprintf("%dx%d-to-%dx%d", c[0], c[1], c[2], c[3]), func(b *testing.B) {
			t := benchcpu.Start()
			for i := 0; i < b.N; i++ {
				Resize(src, c[2], c[3])
			}
			t.Stop(b)
			reportFPS(b)
		})
	}
}
