package align

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/facegate/facegate/infer/imageio"
	"github.com/facegate/facegate/infer/manifest"
)

// fromParams builds the similarity scale s, rotation theta (radians), then
// translation (tx, ty).
func fromParams(s, theta, tx, ty float64) Similarity {
	return Similarity{A: s * math.Cos(theta), B: s * math.Sin(theta), Tx: tx, Ty: ty}
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestEstimateExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tt := range []struct {
		name string
		want Similarity
		n    int
	}{
		{"identity", fromParams(1, 0, 0, 0), 2},
		{"translation", fromParams(1, 0, 12.5, -7.25), 4},
		{"scale up", fromParams(2.5, 0, 0, 0), 5},
		{"scale down", fromParams(0.3, 0, 40, 40), 4},
		{"rotate 90", fromParams(1, math.Pi/2, 0, 0), 3},
		{"rotate -30", fromParams(1, -math.Pi/6, 0, 0), 4},
		{"rotate 180", fromParams(1, math.Pi, 10, 10), 2},
		{"all", fromParams(0.37, 0.7, -120, 33), 6},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := make([]Point, tt.n)
			dst := make([]Point, tt.n)
			for i := range src {
				src[i] = Point{rng.Float64() * 640, rng.Float64() * 480}
				dst[i] = tt.want.Apply(src[i])
			}
			got, err := Estimate(src, dst)
			if err != nil {
				t.Fatal(err)
			}
			if !near(got.A, tt.want.A, 1e-9) || !near(got.B, tt.want.B, 1e-9) || !near(got.Tx, tt.want.Tx, 1e-6) || !near(got.Ty, tt.want.Ty, 1e-6) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			inv, err := got.Inverse()
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range src {
				q := inv.Apply(got.Apply(p))
				if !near(q[0], p[0], 1e-9) || !near(q[1], p[1], 1e-9) {
					t.Fatalf("inverse: %v -> %v", p, q)
				}
			}
		})
	}
}

// lstsq solves the similarity least-squares problem through its 4x4 normal
// equations (the transform is linear in A, B, Tx, Ty): an independent
// reference for Estimate.
func lstsq(src, dst []Point) Similarity {
	var m [4][5]float64
	add := func(row [4]float64, y float64) {
		for i := 0; i < 4; i++ {
			for j := 0; j < 4; j++ {
				m[i][j] += row[i] * row[j]
			}
			m[i][4] += row[i] * y
		}
	}
	for i := range src {
		x, y := src[i][0], src[i][1]
		add([4]float64{x, -y, 1, 0}, dst[i][0])
		add([4]float64{y, x, 0, 1}, dst[i][1])
	}
	for c := 0; c < 4; c++ { // Gauss-Jordan with partial pivoting
		p := c
		for r := c + 1; r < 4; r++ {
			if math.Abs(m[r][c]) > math.Abs(m[p][c]) {
				p = r
			}
		}
		m[c], m[p] = m[p], m[c]
		for r := 0; r < 4; r++ {
			if r != c {
				f := m[r][c] / m[c][c]
				for k := c; k < 5; k++ {
					m[r][k] -= f * m[c][k]
				}
			}
		}
	}
	return Similarity{A: m[0][4] / m[0][0], B: m[1][4] / m[1][1], Tx: m[2][4] / m[2][2], Ty: m[3][4] / m[3][3]}
}

func TestEstimateLeastSquares(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 50; trial++ {
		n := 2 + rng.IntN(5)
		truth := fromParams(0.2+rng.Float64()*2, (rng.Float64()-0.5)*2*math.Pi, rng.Float64()*100, rng.Float64()*100)
		src := make([]Point, n)
		dst := make([]Point, n)
		for i := range src {
			src[i] = Point{rng.Float64() * 300, rng.Float64() * 300}
			q := truth.Apply(src[i])
			dst[i] = Point{q[0] + rng.NormFloat64()*3, q[1] + rng.NormFloat64()*3}
		}
		got, err := Estimate(src, dst)
		if err != nil {
			t.Fatal(err)
		}
		want := lstsq(src, dst)
		if !near(got.A, want.A, 1e-9) || !near(got.B, want.B, 1e-9) || !near(got.Tx, want.Tx, 1e-6) || !near(got.Ty, want.Ty, 1e-6) {
			t.Fatalf("trial %d: got %+v, normal equations %+v", trial, got, want)
		}
	}
}

func TestEstimateNoReflection(t *testing.T) {
	src := []Point{{0, 0}, {10, 0}, {0, 10}, {10, 10}}
	dst := []Point{{0, 0}, {-10, 0}, {0, 10}, {-10, 10}} // mirrored
	got, err := Estimate(src, dst)
	if errors.Is(err, ErrDegenerate) {
		return // the best similarity of a mirror image is the zero map: refusing is right
	}
	if err != nil {
		t.Fatal(err)
	}
	if got.Scale() > 0.5 {
		t.Fatalf("a mirror was fitted as %+v", got)
	}
}

func TestEstimateDegenerate(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name     string
		src, dst []Point
	}{
		{"none", nil, nil},
		{"one", []Point{{1, 2}}, []Point{{3, 4}}},
		{"count mismatch", []Point{{1, 2}, {3, 4}}, []Point{{1, 2}}},
		{"all equal", []Point{{5, 5}, {5, 5}, {5, 5}}, []Point{{1, 2}, {3, 4}, {5, 7}}},
		{"template all equal", []Point{{1, 2}, {3, 4}}, []Point{{5, 5}, {5, 5}}},
		{"nan", []Point{{1, nan}, {3, 4}}, []Point{{1, 2}, {3, 4}}},
		{"template nan", []Point{{1, 2}, {3, 4}}, []Point{{nan, 2}, {3, 4}}},
		{"inf", []Point{{math.Inf(1), 2}, {3, 4}}, []Point{{1, 2}, {3, 4}}},
		{"huge", []Point{{1e300, 2}, {-1e300, 4}}, []Point{{1, 2}, {3, 4}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if m, err := Estimate(tt.src, tt.dst); !errors.Is(err, ErrDegenerate) {
				t.Fatalf("got %+v, %v; want ErrDegenerate", m, err)
			}
		})
	}
	if _, err := (Similarity{}).Inverse(); !errors.Is(err, ErrDegenerate) {
		t.Errorf("zero transform inverted: %v", err)
	}
}

// linearImage has pixel (x, y) = f(x+0.5, y+0.5) for the affine colour
// functions below: bilinear interpolation reproduces an affine function
// exactly, so a chip must match f at the mapped chip pixel centres up to
// float rounding. A half-pixel convention error shifts it by ~0.5*slope.
func linearImage(w, h int) *imageio.RGB {
	img := imageio.NewRGB(w, h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := linearColour(Point{float64(x) + 0.5, float64(y) + 0.5})
			i := img.Offset(x, y)
			for k := 0; k < 3; k++ {
				img.Pix[i+k] = uint8(c[k]) // exact: the functions give integers at pixel centres
			}
		}
	}
	return img
}

func linearColour(p Point) [3]float64 {
	return [3]float64{p[0] - 0.5, p[1] - 0.5, 0.5*(p[0]-0.5) + 0.25*(p[1]-0.5) + 10}
}

func TestCropConventionAndTransforms(t *testing.T) {
	img := linearImage(200, 200) // values 0..199 (R, G), 10..159 (B; rounded down at odd sums)
	base := []Point{{70, 80}, {130, 80}, {100, 115}, {100, 140}}
	tests := []struct {
		name string
		m    Similarity // image -> chip
		size int
	}{
		{"identity", fromParams(1, 0, 0, 0), 64},
		{"translation", fromParams(1, 0, -50.3, -60.7), 100},
		{"scale up 2", fromParams(2, 0, -100, -120), 150},
		{"scale down 0.5 (2x2 supersampling)", fromParams(0.5, 0, -10, -20), 60},
		{"scale down 0.2 (5x5 supersampling)", fromParams(0.2, 0, 0, 0), 30},
		{"rotate 90", fromParams(1, math.Pi/2, 180, -20), 112},
		{"rotate 30 scale 1.3", fromParams(1.3, math.Pi/6, -40, -150), 150},
		{"rotate -20 scale 0.75", fromParams(0.75, -math.Pi/9, 0, 30), 150},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl := Template{Size: tt.size}
			for _, p := range base {
				tmpl.Points = append(tmpl.Points, tt.m.Apply(p))
			}
			dst := make([]float32, 3*tt.size*tt.size)
			got, err := Crop(img, base, tmpl, dst)
			if err != nil {
				t.Fatal(err)
			}
			if !near(got.A, tt.m.A, 1e-9) || !near(got.B, tt.m.B, 1e-9) || !near(got.Tx, tt.m.Tx, 1e-6) {
				t.Fatalf("transform %+v, want %+v", got, tt.m)
			}
			inv, _ := tt.m.Inverse()
			checked := 0
			for j := 0; j < tt.size; j++ {
				for i := 0; i < tt.size; i++ {
					src := inv.Apply(Point{float64(i) + 0.5, float64(j) + 0.5})
					// Only where every (super)sample is inside the image,
					// at least one source pixel from the edge.
					reach := 1 + inv.Scale()
					if src[0] < 0.5+reach || src[1] < 0.5+reach || src[0] > 199.5-reach || src[1] > 199.5-reach {
						continue
					}
					want := linearColour(src)
					want[2] = 0.5*(src[0]-0.5) + 0.25*(src[1]-0.5) + 10
					for c := 0; c < 2; c++ {
						if g := float64(dst[3*(j*tt.size+i)+c]); !near(g, want[c], 2e-3*math.Max(1, inv.Scale())) {
							t.Fatalf("chip (%d,%d) channel %d = %.4f, want %.4f (source %.3f,%.3f)", i, j, c, g, want[c], src[0], src[1])
						}
					}
					// Blue is floored at the pixel centres: within 1.
					if g := float64(dst[3*(j*tt.size+i)+2]); !near(g, want[2], 1) {
						t.Fatalf("chip (%d,%d) blue = %.3f, want %.3f", i, j, g, want[2])
					}
					checked++
				}
			}
			if checked < tt.size*tt.size/4 {
				t.Fatalf("only %d chip pixels checked", checked)
			}
		})
	}
}

// smoothImage is a smooth colourful pattern sampled at pixel centres.
func smoothImage(w, h int) *imageio.RGB {
	img := imageio.NewRGB(w, h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fx, fy := float64(x)+0.5, float64(y)+0.5
			i := img.Offset(x, y)
			img.Pix[i] = uint8(127.5 + 120*math.Sin(fx/9)*math.Cos(fy/13))
			img.Pix[i+1] = uint8(127.5 + 120*math.Sin((fx+fy)/17))
			img.Pix[i+2] = uint8(127.5 + 120*math.Cos((fx-2*fy)/21))
		}
	}
	return img
}

func TestCropRoundTrip(t *testing.T) {
	// Warp an image with a known similarity, then align the warped image
	// back with keypoints moved the same way: the original comes back.
	orig := smoothImage(160, 160)
	fwd := fromParams(1.25, 0.35, 60.3, -8.3) // orig -> warped; orig (80,80) lands at the centre
	warped := make([]float32, 3*240*240)
	if err := Warp(orig, fwd, 240, warped); err != nil {
		t.Fatal(err)
	}
	wimg := imageio.NewRGB(240, 240)
	for i, v := range warped {
		wimg.Pix[i] = uint8(math.Round(float64(v)))
	}
	kps := []Point{{50, 60}, {110, 60}, {80, 95}, {80, 120}}
	tmpl := Template{Size: 160, Points: kps}
	moved := make([]Point, len(kps))
	for i, p := range kps {
		moved[i] = fwd.Apply(p)
	}
	back, m, err := CropRGB(wimg, moved, tmpl)
	if err != nil {
		t.Fatal(err)
	}
	inv, _ := fwd.Inverse()
	if !near(m.A, inv.A, 1e-9) || !near(m.B, inv.B, 1e-9) {
		t.Fatalf("recovered %+v, want %+v", m, inv)
	}
	var sum, n, worst float64
	for y := 40; y < 120; y++ {
		for x := 40; x < 120; x++ {
			for c := 0; c < 3; c++ {
				d := math.Abs(float64(back.Pix[back.Offset(x, y)+c]) - float64(orig.Pix[orig.Offset(x, y)+c]))
				sum += d
				n++
				worst = math.Max(worst, d)
			}
		}
	}
	if sum/n > 1.5 || worst > 12 {
		t.Fatalf("round trip: mean abs error %.2f, worst %.0f", sum/n, worst)
	}
	t.Logf("round trip: mean abs error %.2f, worst %.0f", sum/n, worst)
}

func TestCropBorderIsBlack(t *testing.T) {
	img := imageio.NewRGB(40, 40)
	for i := range img.Pix {
		img.Pix[i] = 200
	}
	// The face is in the image's top-left corner, so most of the chip lies
	// outside: left and top chip pixels must be black, the rest 200.
	tmpl := Template{Size: 100, Points: []Point{{30, 40}, {70, 40}, {50, 70}}}
	kps := []Point{{0, 0}, {40, 0}, {20, 30}} // image -> chip: translate by (30, 40)
	chip, _, err := CropRGB(img, kps, tmpl)
	if err != nil {
		t.Fatal(err)
	}
	// Chip pixel x maps to source pixel x-30 exactly, so the image covers
	// chip x in [30, 70) and y in [40, 80).
	for _, tc := range []struct{ x, y int }{{5, 5}, {20, 60}, {60, 20}, {50, 60}, {69, 79}, {30, 40}, {70, 50}, {50, 80}, {99, 99}} {
		want := uint8(0)
		if tc.x >= 30 && tc.x < 70 && tc.y >= 40 && tc.y < 80 {
			want = 200
		}
		if g := chip.Pix[chip.Offset(tc.x, tc.y)]; g != want {
			t.Errorf("chip (%d,%d) = %d, want %d", tc.x, tc.y, g, want)
		}
	}
	// Half a pixel off the grid the border fades: the bilinear taps
	// outside read 0.
	half := []Point{{0.5, 0}, {40.5, 0}, {20.5, 30}}
	chip, _, err = CropRGB(img, half, tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if g := chip.Pix[chip.Offset(29, 50)]; g != 100 {
		t.Errorf("half-covered border pixel = %d, want 100", g)
	}
}

func TestCropErrors(t *testing.T) {
	img := smoothImage(50, 50)
	tmpl := Template{Size: 20, Points: []Point{{5, 5}, {15, 5}}}
	kps := []Point{{10, 10}, {30, 10}}
	if _, err := Crop(img, kps, tmpl, make([]float32, 3*20*20-1)); err == nil {
		t.Error("short buffer accepted")
	}
	if _, err := Crop(img, kps[:1], tmpl, make([]float32, 3*20*20)); !errors.Is(err, ErrDegenerate) {
		t.Errorf("one keypoint: %v", err)
	}
	if _, err := Crop(img, []Point{{10, 10}, {10, 10}}, tmpl, make([]float32, 3*20*20)); !errors.Is(err, ErrDegenerate) {
		t.Errorf("equal keypoints: %v", err)
	}
	if _, err := Crop(&imageio.RGB{W: 5, H: 5}, kps, tmpl, make([]float32, 3*20*20)); err == nil {
		t.Error("broken image accepted")
	}
	if _, err := Crop(img, kps, Template{Size: 0, Points: tmpl.Points}, nil); err == nil {
		t.Error("size 0 accepted")
	}
	if _, err := CropBatch(img, [][]Point{kps, kps}, tmpl, make([]float32, 3*20*20)); err == nil {
		t.Error("short batch buffer accepted")
	}
}

func TestCropBatch(t *testing.T) {
	img := smoothImage(120, 120)
	tmpl := Template{Size: 32, Points: []Point{{8, 10}, {24, 10}, {16, 26}}}
	faces := [][]Point{
		{{10, 10}, {40, 10}, {25, 40}},
		{{60, 60}, {100, 70}, {75, 105}},
	}
	n := 3 * 32 * 32
	batch := make([]float32, 2*n)
	ms, err := CropBatch(img, faces, tmpl, batch)
	if err != nil || len(ms) != 2 {
		t.Fatal(err)
	}
	for i, kp := range faces {
		one := make([]float32, n)
		if _, err := Crop(img, kp, tmpl, one); err != nil {
			t.Fatal(err)
		}
		for k := range one {
			if one[k] != batch[i*n+k] {
				t.Fatalf("face %d element %d: batch %v, single %v", i, k, batch[i*n+k], one[k])
			}
		}
	}
}

func TestCropNoAllocation(t *testing.T) {
	img := smoothImage(320, 240)
	tmpl := Template{Size: 150, Points: []Point{{50, 50}, {100, 50}, {75, 80}, {75, 105}}}
	kps := []Point{{140, 100}, {200, 104}, {170, 140}, {168, 170}}
	dst := make([]float32, 3*150*150)
	if a := testing.AllocsPerRun(5, func() {
		if _, err := Crop(img, kps, tmpl, dst); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("Crop allocates %v times", a)
	}
}

func TestTemplate(t *testing.T) {
	a := &manifest.Alignment{Size: 150, Padding: 0.25,
		Points:    [][2]float64{{47.71, 46.92}, {100.77, 46.89}, {73.95, 76.09}, {74.18, 107.17}},
		PointKeys: []string{"right_eye", "left_eye", "nose_tip", "mouth_center"}}
	tmpl, err := TemplateFrom(a)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.Size != 150 || len(tmpl.Points) != 4 || tmpl.Names[2] != "nose_tip" {
		t.Fatalf("%+v", tmpl)
	}
	a.Points[0][0] = 0 // the template owns its points
	if tmpl.Points[0][0] != 47.71 {
		t.Error("template shares the manifest's points")
	}
	if o := tmpl.Offset(0.5); o.Points[3] != (Point{74.68, 107.67}) || tmpl.Points[3] != (Point{74.18, 107.17}) {
		t.Errorf("Offset: %v (original %v)", o.Points[3], tmpl.Points[3])
	}
	names := []string{"right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion", "left_ear_tragion"}
	kps := []Point{{1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}, {6, 6}}
	sel, err := tmpl.Select(kps, names)
	if err != nil || fmt.Sprint(sel) != "[[1 1] [2 2] [3 3] [4 4]]" {
		t.Fatalf("Select = %v, %v", sel, err)
	}
	if _, err := tmpl.Select(kps[:3], names[:3]); err == nil {
		t.Error("missing mouth_center accepted")
	}
	if _, err := tmpl.Select(kps, names[:5]); err == nil {
		t.Error("name count mismatch accepted")
	}
	for _, bad := range []*manifest.Alignment{
		nil,
		{Size: 0, Points: a.Points, PointKeys: a.PointKeys},
		{Size: 150, Points: a.Points[:1], PointKeys: a.PointKeys[:1]},
		{Size: 150, Points: a.Points, PointKeys: a.PointKeys[:2]},
		{Size: 150, Points: [][2]float64{{math.NaN(), 1}, {2, 3}}},
	} {
		if _, err := TemplateFrom(bad); err == nil {
			t.Errorf("bad template %+v accepted", bad)
		}
	}
}

func benchmarkCrop(b *testing.B, size int) {
	img := smoothImage(640, 480)
	s := float64(size)
	tmpl := Template{Size: size, Points: []Point{{0.32 * s, 0.31 * s}, {0.67 * s, 0.31 * s}, {0.49 * s, 0.51 * s}, {0.5 * s, 0.71 * s}}}
	// A face with 90 px between the eyes, rolled by ~5 degrees.
	kps := []Point{{280, 200}, {370, 208}, {322, 250}, {318, 290}}
	dst := make([]float32, 3*size*size)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Crop(img, kps, tmpl, dst); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCrop150(b *testing.B) { benchmarkCrop(b, 150) }
func BenchmarkCrop224(b *testing.B) { benchmarkCrop(b, 224) }

func TestQuantize(t *testing.T) {
	chip := []float32{-3, 0, 0.49, 0.5, 127.5, 254.4, 254.5, 255, 300, float32(math.Inf(1))}
	want := []uint8{0, 0, 0, 1, 128, 254, 255, 255, 255, 255}
	dst := make([]uint8, len(chip)+2)
	dst[len(chip)] = 7
	Quantize(dst, chip)
	for i, w := range want {
		if dst[i] != w {
			t.Errorf("Quantize(%v) = %d, want %d", chip[i], dst[i], w)
		}
	}
	if dst[len(chip)] != 7 {
		t.Error("wrote past the chip")
	}
}
