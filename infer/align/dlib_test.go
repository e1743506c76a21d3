package align

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/facegate/facegate/infer/imageio"
)

func readPPM(t *testing.T, name string) *imageio.RGB {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := imageio.DecodeBytes(b, imageio.Limits{})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return img
}

// TestMatchesDlib compares Warp with chips cut by dlib's
// extract_image_chip (testdata/gen_dlib_chips.py, dlib 20.0.1) from a
// synthetic image. dlib's map from chip pixel (i, j) to source pixel
// (x, y) uses integer pixel centres; in align's continuous coordinates the
// same map is inv(c) = M(c - 0.5) + 0.5. Where all four bilinear taps are
// inside the image the chips must agree to rounding (dlib truncates to
// uint8, so align is on average half a level higher); where dlib's chip
// is outside the image both must be black.
func TestMatchesDlib(t *testing.T) {
	var ref struct {
		Chips []struct {
			Size int
			X, Y [3]float64
		}
	}
	b, err := os.ReadFile("testdata/dlib-chips.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Chips) != 3 {
		t.Fatalf("%d reference chips, want 3", len(ref.Chips))
	}
	src := readPPM(t, "source.ppm")
	for k, c := range ref.Chips {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			want := readPPM(t, fmt.Sprintf("dlib-chip-%d.ppm", k))
			inv := Similarity{A: c.X[0], B: c.Y[0],
				Tx: c.X[2] + 0.5 - 0.5*(c.X[0]+c.X[1]), Ty: c.Y[2] + 0.5 - 0.5*(c.Y[0]+c.Y[1])}
			if math.Abs(c.X[1]+c.Y[0]) > 1e-6 || math.Abs(c.X[0]-c.Y[1]) > 1e-6 {
				t.Fatalf("dlib's map %v %v is not a similarity", c.X, c.Y)
			}
			m, err := inv.Inverse()
			if err != nil {
				t.Fatal(err)
			}
			got := make([]float32, 3*c.Size*c.Size)
			if err := Warp(src, m, c.Size, got); err != nil {
				t.Fatal(err)
			}
			var sum, worst float64
			inside, outside := 0, 0
			for j := 0; j < c.Size; j++ {
				for i := 0; i < c.Size; i++ {
					x := c.X[0]*float64(i) + c.X[1]*float64(j) + c.X[2]
					y := c.Y[0]*float64(i) + c.Y[1]*float64(j) + c.Y[2]
					p := 3 * (j*c.Size + i)
					switch {
					case x >= 0 && y >= 0 && x < float64(src.W-1) && y < float64(src.H-1):
						for ch := 0; ch < 3; ch++ {
							d := float64(got[p+ch]) - float64(want.Pix[p+ch])
							sum += math.Abs(d)
							worst = math.Max(worst, math.Abs(d))
						}
						inside++
					case x <= -1 || y <= -1 || x >= float64(src.W) || y >= float64(src.H):
						for ch := 0; ch < 3; ch++ {
							if got[p+ch] != 0 || want.Pix[p+ch] != 0 {
								t.Fatalf("chip (%d,%d) outside the image: align %v, dlib %v", i, j, got[p:p+3], want.Pix[p:p+3])
							}
						}
						outside++
					}
				}
			}
			mean := sum / float64(3*inside)
			t.Logf("scale %.2f: %d pixels inside (mean |diff| %.3f, worst %.2f), %d outside", inv.Scale(), inside, mean, worst, outside)
			if inside < c.Size*c.Size/2 || mean > 0.6 || worst > 1.001 {
				t.Fatalf("align differs from dlib: mean |diff| %.3f, worst %.2f over %d pixels", mean, worst, inside)
			}
		})
	}
}
