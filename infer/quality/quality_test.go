package quality

import (
	"errors"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/facegate/facegate/infer/imageio"
)

func grey(w, h int, f func(x, y int) uint8) *imageio.RGB {
	img := imageio.NewRGB(w, h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := f(x, y)
			i := img.Offset(x, y)
			img.Pix[i], img.Pix[i+1], img.Pix[i+2] = v, v, v
		}
	}
	return img
}

func checker(size int) func(x, y int) uint8 {
	return func(x, y int) uint8 {
		if (x/size+y/size)%2 == 0 {
			return 40
		}
		return 215
	}
}

// boxBlur averages (2r+1)² neighbourhoods (clamped at the edges).
func boxBlur(m *imageio.RGB, r int) *imageio.RGB {
	out := imageio.NewRGB(m.W, m.H)
	for y := 0; y < m.H; y++ {
		for x := 0; x < m.W; x++ {
			for c := 0; c < 3; c++ {
				s, n := 0, 0
				for dy := -r; dy <= r; dy++ {
					for dx := -r; dx <= r; dx++ {
						xx, yy := min(max(x+dx, 0), m.W-1), min(max(y+dy, 0), m.H-1)
						s += int(m.Pix[m.Offset(xx, yy)+c])
						n++
					}
				}
				out.Pix[out.Offset(x, y)+c] = uint8((s + n/2) / n)
			}
		}
	}
	return out
}

func TestSharpness(t *testing.T) {
	// Pixel checkerboard 0/255: the Laplacian is ±4*255 everywhere, so its
	// variance is exactly 1020².
	pix := grey(20, 20, func(x, y int) uint8 { return uint8(255 * ((x + y) % 2)) })
	if got := Sharpness(pix, pix.Bounds()); math.Abs(got-1020*1020) > 1e-6*1020*1020 {
		t.Errorf("pixel checkerboard: %v, want %v", got, 1020*1020)
	}
	flat := grey(20, 20, func(x, y int) uint8 { return 77 })
	if got := Sharpness(flat, flat.Bounds()); got != 0 {
		t.Errorf("flat: %v, want 0", got)
	}
	// A linear ramp has a zero Laplacian.
	ramp := grey(30, 30, func(x, y int) uint8 { return uint8(3*x + 2*y) })
	if got := Sharpness(ramp, ramp.Bounds()); got > 1e-9 {
		t.Errorf("ramp: %v, want 0", got)
	}
	if got := Sharpness(pix, image.Rect(0, 0, 2, 20)); got != 0 {
		t.Errorf("too small region: %v", got)
	}

	sharp := grey(150, 150, checker(6))
	prev := SharpnessOfChip(sharp)
	t.Logf("checkerboard: %.1f", prev)
	for r := 1; r <= 3; r++ {
		s := SharpnessOfChip(boxBlur(sharp, r))
		t.Logf("box blur %d: %.1f", r, s)
		if !(s < prev/2) {
			t.Errorf("blur radius %d: sharpness %.1f, not well below %.1f", r, s, prev)
		}
		prev = s
	}
	// Fine texture (noise of ±30 around mid grey) is sharp; blurred away
	// it scores below the default threshold.
	rng := rand.New(rand.NewPCG(5, 6))
	noise := grey(150, 150, func(x, y int) uint8 { return uint8(98 + rng.IntN(61)) })
	if s := SharpnessOfChip(noise); s < 10*DefaultMinSharpness {
		t.Errorf("noise chip scores only %.1f", s)
	}
	if s := SharpnessOfChip(boxBlur(boxBlur(noise, 2), 2)); s >= DefaultMinSharpness {
		t.Errorf("heavily blurred chip scores %.1f >= the default threshold %d", s, DefaultMinSharpness)
	}
	if s := SharpnessOfChip(sharp); s < 10*DefaultMinSharpness {
		t.Errorf("sharp chip scores only %.1f", s)
	}
	// Only the centre of a chip counts: detail in the outer 20% is ignored.
	border := grey(150, 150, func(x, y int) uint8 {
		if x < 30 || y < 30 || x >= 120 || y >= 120 {
			return checker(1)(x, y)
		}
		return 100
	})
	if s := SharpnessOfChip(border); s != 0 {
		t.Errorf("border detail counted: %v", s)
	}
}

func TestExposure(t *testing.T) {
	half := grey(40, 40, func(x, y int) uint8 {
		if x < 10 {
			return 0
		}
		if x < 20 {
			return 255
		}
		return 100
	})
	mean, crushed, blown := Exposure(half, half.Bounds())
	if math.Abs(mean-(255*10+100*20)/40.0) > 1e-9 || crushed != 0.25 || blown != 0.25 {
		t.Errorf("got mean %v crushed %v blown %v", mean, crushed, blown)
	}
	// Luma is BT.601.
	img := imageio.NewRGB(2, 1)
	copy(img.Pix, []uint8{255, 0, 0, 0, 0, 255})
	if mean, _, _ := Exposure(img, img.Bounds()); math.Abs(mean-(0.299+0.114)*255/2) > 1e-9 {
		t.Errorf("luma mean %v", mean)
	}
	if mean, c, b := Exposure(img, image.Rect(5, 5, 9, 9)); mean != 0 || c != 0 || b != 0 {
		t.Error("outside region not zero")
	}
}

// face projects the mean-face model (IOD 1) pitched, then yawed, then
// rolled in the image plane, scaled to iod pixels at (cx, cy).
func face(yaw, pitch, roll, iod, cx, cy float64) Keypoints {
	return posed(yaw, pitch, roll, iod, cx, cy, false)
}

// posed is face with the order of pitch and yaw selectable.
func posed(yaw, pitch, roll, iod, cx, cy float64, yawFirst bool) Keypoints {
	rad := math.Pi / 180
	proj := func(x, y, z float64) [2]float64 {
		cy1, sy1 := math.Cos(yaw*rad), math.Sin(yaw*rad)
		cp, sp := math.Cos(pitch*rad), math.Sin(pitch*rad)
		if yawFirst {
			x, z = x*cy1+z*sy1, -x*sy1+z*cy1
			y, z = y*cp+z*sp, -y*sp+z*cp
		} else {
			y, z = y*cp+z*sp, -y*sp+z*cp
			x, _ = x*cy1+z*sy1, -x*sy1+z*cy1
		}
		cr, sr := math.Cos(roll*rad), math.Sin(roll*rad)
		x, y = x*cr-y*sr, x*sr+y*cr
		return [2]float64{cx + iod*x, cy + iod*y}
	}
	return Keypoints{
		RightEye: proj(-eyeHalf, 0, 0),
		LeftEye:  proj(eyeHalf, 0, 0),
		Nose:     proj(0, noseDown, noseDepth),
		Mouth:    proj(0, mouthDown, mouthDepth),
	}
}

func TestEstimatePose(t *testing.T) {
	tests := []struct {
		yaw, pitch, roll float64
		tol              float64
	}{
		{0, 0, 0, 1e-9},
		{20, 0, 0, 1e-9},
		{-45, 0, 0, 1e-9},
		{0, 15, 0, 1e-9},
		{0, -25, 0, 1e-9},
		{0, 0, 10, 1e-9},
		{0, 0, -35, 1e-9},
		{30, 0, 25, 1e-9},
		{0, 20, -15, 1e-9},
		{15, 10, 0, 1e-9},
		{-25, -15, 20, 1e-9},
		{35, 20, -10, 1e-9},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("yaw%v_pitch%v_roll%v", tt.yaw, tt.pitch, tt.roll), func(t *testing.T) {
			k := face(tt.yaw, tt.pitch, tt.roll, 80, 320, 240)
			p := EstimatePose(k)
			if math.Abs(p.Yaw-tt.yaw) > tt.tol || math.Abs(p.Pitch-tt.pitch) > tt.tol || math.Abs(p.Roll-tt.roll) > tt.tol {
				t.Fatalf("got yaw %.3f pitch %.3f roll %.3f", p.Yaw, p.Pitch, p.Roll)
			}
			wantIOD := 80 * math.Cos(tt.yaw*math.Pi/180)
			if math.Abs(p.InterOcular-wantIOD) > 1e-6 {
				t.Fatalf("IOD %.3f, want %.3f", p.InterOcular, wantIOD)
			}
		})
	}
	t.Run("yaw before pitch", func(t *testing.T) {
		// The other order of rotations tilts the eye line: approximate.
		for _, c := range [][3]float64{{15, 10, 0}, {-25, -15, 20}, {20, -20, 5}} {
			p := EstimatePose(posed(c[0], c[1], c[2], 80, 320, 240, true))
			t.Logf("yaw %v pitch %v roll %v -> %.1f %.1f %.1f", c[0], c[1], c[2], p.Yaw, p.Pitch, p.Roll)
			if math.Abs(p.Yaw-c[0]) > 4 || math.Abs(p.Pitch-c[1]) > 2 || math.Abs(p.Roll-c[2]) > 8 {
				t.Errorf("yaw %v pitch %v roll %v estimated as %.1f %.1f %.1f", c[0], c[1], c[2], p.Yaw, p.Pitch, p.Roll)
			}
		}
	})
	t.Run("shifted nose", func(t *testing.T) {
		// Frontal face, nose moved right by 0.45 of half the IOD: tan(yaw) = 0.5, yaw = 26.57.
		k := face(0, 0, 0, 100, 200, 200)
		k.Nose[0] += 0.45 * 50 * 1
		if p := EstimatePose(k); math.Abs(p.Yaw-math.Atan(0.5)*180/math.Pi) > 1e-9 || math.Abs(p.Pitch) > 1e-9 {
			t.Fatalf("yaw %.3f pitch %.3f", p.Yaw, p.Pitch)
		}
		k.Nose[0] -= 2 * 0.45 * 50
		if p := EstimatePose(k); math.Abs(p.Yaw+math.Atan(0.5)*180/math.Pi) > 1e-9 {
			t.Fatalf("yaw %.3f", p.Yaw)
		}
	})
	t.Run("roll sign", func(t *testing.T) {
		k := Keypoints{RightEye: [2]float64{100, 100}, LeftEye: [2]float64{200, 200}, Nose: [2]float64{120, 180}, Mouth: [2]float64{100, 250}}
		if p := EstimatePose(k); math.Abs(p.Roll-45) > 1e-9 {
			t.Fatalf("roll %.3f, want 45 (image-right eye lower)", p.Roll)
		}
	})
	t.Run("degenerate", func(t *testing.T) {
		if p := EstimatePose(Keypoints{}); p != (Pose{}) {
			t.Fatalf("coincident eyes: %+v", p)
		}
		k := face(0, 0, 0, 60, 100, 100)
		k.Mouth[1] = 50 // above the eyes
		if p := EstimatePose(k); p.Pitch != 90 {
			t.Fatalf("mouth above eyes: pitch %v", p.Pitch)
		}
	})
}

func TestAssess(t *testing.T) {
	textured := func(v uint8) *imageio.RGB {
		return grey(640, 480, func(x, y int) uint8 {
			if (x/3+y/3)%2 == 0 {
				return v - 30
			}
			return v + 30
		})
	}
	good := Face{Box: Box{260, 180, 380, 330}, Keypoints: face(0, 0, 0, 60, 320, 230)}
	th := DefaultThresholds()
	tests := []struct {
		name  string
		img   *imageio.RGB
		face  Face
		th    Thresholds
		fails []string
		on    string
	}{
		{"good", textured(128), good, th, nil, "box"},
		{"small", textured(128), Face{Box: good.Box, Keypoints: face(0, 0, 0, 25, 320, 230)}, th, []string{CheckInterOcular}, "box"},
		{"small but check disabled", textured(128), Face{Box: good.Box, Keypoints: face(0, 0, 0, 25, 320, 230)}, Thresholds{}, nil, "box"},
		{"blurred", boxBlur(grey(640, 480, checker(3)), 3), good, th, []string{CheckSharpness}, "box"},
		{"turned", textured(128), Face{Box: good.Box, Keypoints: face(40, 0, 0, 60, 320, 230)}, th, []string{CheckYaw}, "box"},
		{"looking down", textured(128), Face{Box: good.Box, Keypoints: face(0, 35, 0, 60, 320, 230)}, th, []string{CheckPitch}, "box"},
		{"rolled", textured(128), Face{Box: good.Box, Keypoints: face(0, 0, -40, 60, 320, 230)}, th, []string{CheckRoll}, "box"},
		{"dark", textured(45), good, th, []string{CheckDark}, "box"},
		{"bright", textured(215), good, th, []string{CheckBright}, "box"},
		{"clipped", grey(640, 480, func(x, y int) uint8 { return uint8(255 * ((x / 4) % 2)) }), good, th, []string{CheckCrushed, CheckBlown}, "box"},
		{"box outside", textured(128), Face{Box: Box{700, 500, 800, 600}, Keypoints: good.Keypoints}, th, []string{CheckOutside}, ""},
		{"everything", boxBlur(grey(640, 480, func(x, y int) uint8 { return 10 }), 1),
			Face{Box: good.Box, Keypoints: face(50, -35, 45, 20, 320, 230)}, th,
			[]string{CheckInterOcular, CheckSharpness, CheckYaw, CheckPitch, CheckRoll, CheckDark}, "box"},
		{"chip", textured(128), Face{Box: good.Box, Keypoints: good.Keypoints, Chip: grey(150, 150, func(x, y int) uint8 { return 90 })}, th, []string{CheckSharpness}, "chip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Assess(tt.img, tt.face, tt.th)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(r.Failures, tt.fails) || r.OK != (len(tt.fails) == 0) || r.SharpnessOn != tt.on {
				t.Fatalf("report %v: failures %v, want %v (sharpness on %q, want %q)", r, r.Failures, tt.fails, r.SharpnessOn, tt.on)
			}
			t.Log(r)
		})
	}
}

func TestAssessBadInput(t *testing.T) {
	img := grey(100, 100, checker(2))
	good := Face{Box: Box{10, 10, 90, 90}, Keypoints: face(0, 0, 0, 40, 50, 45)}
	nan := good
	nan.Keypoints.Nose[0] = math.NaN()
	inf := good
	inf.Box.X1 = math.Inf(1)
	badChip := good
	badChip.Chip = &imageio.RGB{W: 10, H: 10}
	for _, tt := range []struct {
		name string
		img  *imageio.RGB
		face Face
		th   Thresholds
	}{
		{"nil image", nil, good, DefaultThresholds()},
		{"broken image", &imageio.RGB{W: 4, H: 4, Pix: make([]uint8, 3)}, good, DefaultThresholds()},
		{"nan keypoint", img, nan, DefaultThresholds()},
		{"inf box", img, inf, DefaultThresholds()},
		{"broken chip", img, badChip, DefaultThresholds()},
		{"bad thresholds", img, good, Thresholds{MaxYaw: -1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Assess(tt.img, tt.face, tt.th); !errors.Is(err, ErrInput) {
				t.Fatalf("err = %v, want ErrInput", err)
			}
		})
	}
}

func TestThresholdsValidate(t *testing.T) {
	if err := DefaultThresholds().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Thresholds{}).Validate(); err != nil {
		t.Fatalf("all checks disabled: %v", err)
	}
	for _, th := range []Thresholds{
		{MinInterOcular: -1}, {MinSharpness: math.NaN()}, {MaxYaw: 91}, {MaxPitch: -3},
		{MaxRoll: 200}, {MinMeanLuma: 300}, {MinMeanLuma: 150, MaxMeanLuma: 100}, {MaxClipped: 1.5},
	} {
		if err := th.Validate(); err == nil {
			t.Errorf("%+v accepted", th)
		}
	}
}

func TestKeypointsFrom(t *testing.T) {
	names := []string{"right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion", "left_ear_tragion"}
	pts := [][2]float64{{1, 2}, {3, 4}, {5, 6}, {7, 8}, {9, 10}, {11, 12}}
	k, err := KeypointsFrom(pts, names)
	if err != nil {
		t.Fatal(err)
	}
	if k.RightEye != pts[0] || k.LeftEye != pts[1] || k.Nose != pts[2] || k.Mouth != pts[3] {
		t.Fatalf("%+v", k)
	}
	if _, err := KeypointsFrom(pts[:3], names[:3]); !errors.Is(err, ErrInput) {
		t.Errorf("missing mouth: %v", err)
	}
	if _, err := KeypointsFrom(pts, names[:2]); !errors.Is(err, ErrInput) {
		t.Errorf("count mismatch: %v", err)
	}
}
