package track

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/facegate/facegate/infer/detect"
	"github.com/facegate/facegate/infer/imageio"
)

// patch is a synthetic "face": a smooth random texture (a few sinusoids of
// 25-60 px wavelength) in a square at (x, y).
type patch struct {
	x, y, size int
	seed       uint64
}

type wave struct{ kx, ky, phase, amp float64 }

func waves(seed uint64) []wave {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	ws := make([]wave, 4)
	for i := range ws {
		lambda := 25 + 35*rng.Float64()
		th := 2 * math.Pi * rng.Float64()
		k := 2 * math.Pi / lambda
		ws[i] = wave{k * math.Cos(th), k * math.Sin(th), 2 * math.Pi * rng.Float64(), 12 + 8*rng.Float64()}
	}
	return ws
}

func texture(ws []wave, x, y float64) float64 {
	v := 0.0
	for _, w := range ws {
		v += w.amp * math.Sin(w.kx*x+w.ky*y+w.phase)
	}
	return v
}

// scene renders a w×h frame: a textured background (fixed in the frame),
// the patches over it, a brightness offset and, with noise > 0, uniform
// pixel noise of ±noise levels.
func scene(w, h int, patches []patch, brightness, noise int, noiseSeed uint64) *imageio.RGB {
	img := imageio.NewRGB(w, h)
	bg := waves(1000)
	pw := make([][]wave, len(patches))
	for i, p := range patches {
		pw[i] = waves(p.seed)
	}
	rng := rand.New(rand.NewPCG(noiseSeed, 7))
	for y := range h {
		for x := range w {
			v := 90 + 0.5*texture(bg, float64(x), float64(y))
			tint := [3]float64{0, 0, 0}
			for i, p := range patches {
				if x >= p.x && x < p.x+p.size && y >= p.y && y < p.y+p.size {
					v = 140 + texture(pw[i], float64(x-p.x), float64(y-p.y))
					tint = [3]float64{20, 0, -15}
				}
			}
			v += float64(brightness)
			if noise > 0 {
				v += float64(rng.IntN(2*noise+1) - noise)
			}
			o := img.Offset(x, y)
			for c := range 3 {
				img.Pix[o+c] = uint8(math.Max(0, math.Min(255, math.Round(v+tint[c]))))
			}
		}
	}
	return img
}

// det is a detection of p with three keypoints.
func det(p patch) detect.Detection {
	x, y, s := float64(p.x), float64(p.y), float64(p.size)
	return detect.Detection{
		Box:       detect.Box{X0: x, Y0: y, X1: x + s, Y1: y + s},
		Keypoints: []detect.Point{{X: x + 0.3*s, Y: y + 0.35*s}, {X: x + 0.7*s, Y: y + 0.35*s}, {X: x + 0.5*s, Y: y + 0.75*s}},
		Score:     0.9,
	}
}

func shifted(p patch, dx, dy int) patch { p.x += dx; p.y += dy; return p }

var (
	face1 = patch{x: 100, y: 60, size: 120, seed: 1}
	face2 = patch{x: 20, y: 30, size: 60, seed: 2}
	t0    = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	frame = 40 * time.Millisecond
)

func testConfig() Config {
	return Config{Threshold: 6, MaxFrames: 5, MaxAge: 500 * time.Millisecond}
}

func TestCheck(t *testing.T) {
	base := scene(320, 240, []patch{face1}, 0, 0, 0)
	tests := []struct {
		name   string
		cfg    Config
		dets   []detect.Detection // remembered (default: face1)
		next   *imageio.RGB
		at     time.Duration // after the detection (default: one frame)
		reuse  bool
		reason Reason
	}{
		{name: "static", next: base, reuse: true},
		{name: "camera noise ±3", next: scene(320, 240, []patch{face1}, 0, 3, 9), reuse: true},
		{name: "brightness +3", next: scene(320, 240, []patch{face1}, 3, 0, 0), reuse: true},
		{name: "shifted 1 px", next: scene(320, 240, []patch{shifted(face1, 1, 0)}, 0, 0, 0), reuse: true},
		{name: "shifted 1 px down-left", next: scene(320, 240, []patch{shifted(face1, -1, 1)}, 0, 0, 0), reuse: true},
		{name: "shifted 4 px", next: scene(320, 240, []patch{shifted(face1, 4, 0)}, 0, 0, 0), reason: Moved},
		{name: "shifted 3x3 px", next: scene(320, 240, []patch{shifted(face1, 3, 3)}, 0, 0, 0), reason: Moved},
		{name: "shifted 12 px", next: scene(320, 240, []patch{shifted(face1, 12, -5)}, 0, 0, 0), reason: Moved},
		{name: "a different face in the box", next: scene(320, 240, []patch{{x: 100, y: 60, size: 120, seed: 5}}, 0, 0, 0), reason: Moved},
		{name: "face gone", next: scene(320, 240, nil, 0, 0, 0), reason: Moved},
		{name: "brightness +20", next: scene(320, 240, []patch{face1}, 20, 0, 0), reason: Moved},
		{name: "brightness -20", next: scene(320, 240, []patch{face1}, -20, 0, 0), reason: Moved},
		{name: "max age reached", next: base, at: 500 * time.Millisecond, reason: MaxAge},
		{name: "just under max age", next: base, at: 499 * time.Millisecond, reuse: true},
		{name: "no max age", cfg: Config{Threshold: 6, MaxFrames: 5}, next: base, at: time.Hour, reuse: true},
		{name: "clock went back", next: base, at: -time.Millisecond, reason: MaxAge},
		{name: "frame size changed", next: scene(321, 240, []patch{face1}, 0, 0, 0), reason: SizeChanged},
		{name: "disabled", cfg: Config{}, next: base, reason: Disabled},
		{name: "no faces remembered", dets: []detect.Detection{}, next: base, reason: NoFaces},
		{name: "box too small", dets: []detect.Detection{{Box: detect.Box{X0: 10, Y0: 10, X1: 20, Y1: 40}}}, next: base, reason: Untrackable},
		{name: "box outside the frame", dets: []detect.Detection{{Box: detect.Box{X0: 400, Y0: 10, X1: 500, Y1: 110}}}, next: base, reason: Untrackable},
		{name: "NaN box", dets: []detect.Detection{{Box: detect.Box{X0: math.NaN(), Y0: 10, X1: 50, Y1: 60}}}, next: base, reason: Untrackable},
		{name: "box partly outside, static", dets: []detect.Detection{{Box: detect.Box{X0: 280.5, Y0: -20, X1: 360, Y1: 60}}}, next: base, reuse: true},
		{name: "second face added elsewhere: not seen", next: scene(320, 240, []patch{face1, face2}, 0, 0, 0), reuse: true},
		{name: "second face over half the box", next: scene(320, 240, []patch{face1, {x: 120, y: 80, size: 90, seed: 2}}, 0, 0, 0), reason: Moved},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if cfg == (Config{}) && tc.name != "disabled" {
				cfg = testConfig()
			}
			tr, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			dets := tc.dets
			if dets == nil {
				dets = []detect.Detection{det(face1)}
			}
			tr.Update(base, dets, t0)
			at := tc.at
			if at == 0 {
				at = frame
			}
			got, d := tr.Check(tc.next, t0.Add(at))
			t.Logf("diff %.2f reason %q", d.Diff, d.Reason)
			if d.Reuse != tc.reuse || d.Reason != tc.reason {
				t.Fatalf("Check = reuse %v reason %q (diff %.2f), want reuse %v reason %q", d.Reuse, d.Reason, d.Diff, tc.reuse, tc.reason)
			}
			if d.Reuse != (got != nil) {
				t.Fatalf("reuse %v but detections %v", d.Reuse, got)
			}
			if d.Reuse {
				if len(got) != len(dets) || got[0].Box != dets[0].Box || len(got[0].Keypoints) != len(dets[0].Keypoints) {
					t.Fatalf("reused detections %+v, want %+v", got, dets)
				}
				if d.Reused != 1 || d.Diff >= cfg.Threshold || d.Age != at {
					t.Fatalf("decision %+v", d)
				}
			}
			if tc.reason == Moved && !(d.Diff >= cfg.Threshold) {
				t.Fatalf("moved with diff %v under the threshold", d.Diff)
			}
		})
	}
}

// TestShiftMonotonic: the difference grows with the shift, and the default
// threshold sits between one and a few pixels of motion of a 120 px face.
func TestShiftMonotonic(t *testing.T) {
	base := scene(320, 240, []patch{face1}, 0, 0, 0)
	tr, err := New(Config{Threshold: 255, MaxFrames: 100})
	if err != nil {
		t.Fatal(err)
	}
	prev := -1.0
	for s := range 9 {
		tr.Update(base, []detect.Detection{det(face1)}, t0)
		_, d := tr.Check(scene(320, 240, []patch{shifted(face1, s, 0)}, 0, 0, 0), t0.Add(frame))
		t.Logf("shift %d px: diff %.2f", s, d.Diff)
		if d.Diff < prev {
			t.Errorf("shift %d px: diff %.2f below the %.2f of a smaller shift", s, d.Diff, prev)
		}
		prev = d.Diff
	}
}

func TestMaxFrames(t *testing.T) {
	base := scene(320, 240, []patch{face1}, 0, 0, 0)
	tr, err := New(Config{Threshold: 6, MaxFrames: 3})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		tr.Update(base, []detect.Detection{det(face1)}, t0)
		for i := 1; i <= 3; i++ {
			if _, d := tr.Check(base, t0.Add(time.Duration(i)*frame)); !d.Reuse || d.Reused != i {
				t.Fatalf("round %d frame %d: %+v", round, i, d)
			}
		}
		if _, d := tr.Check(base, t0.Add(4*frame)); d.Reuse || d.Reason != MaxFrames || d.Reused != 3 {
			t.Fatalf("round %d after 3 reuses: %+v", round, d)
		}
		// Still refused until a new detection.
		if _, d := tr.Check(base, t0.Add(5*frame)); d.Reuse {
			t.Fatalf("round %d: reused after max frames: %+v", round, d)
		}
	}
	tr.Reset()
	if _, d := tr.Check(base, t0); d.Reuse || d.Reason != NoFaces {
		t.Fatalf("after Reset: %+v", d)
	}
}

// TestTwoFaces: every remembered face must hold still.
func TestTwoFaces(t *testing.T) {
	base := scene(320, 240, []patch{face1, face2}, 0, 0, 0)
	tr, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	dets := []detect.Detection{det(face1), det(face2)}
	tr.Update(base, dets, t0)
	if got, d := tr.Check(base, t0.Add(frame)); !d.Reuse || len(got) != 2 {
		t.Fatalf("static: %+v %v", d, got)
	}
	if _, d := tr.Check(scene(320, 240, []patch{face1, shifted(face2, 6, 0)}, 0, 0, 0), t0.Add(2*frame)); d.Reuse || d.Reason != Moved {
		t.Fatalf("second face moved: %+v", d)
	}
}

// TestCopies: neither the caller's detections nor the returned ones alias
// the tracker's memory.
func TestCopies(t *testing.T) {
	base := scene(320, 240, []patch{face1}, 0, 0, 0)
	tr, err := New(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	dets := []detect.Detection{det(face1)}
	want := det(face1)
	tr.Update(base, dets, t0)
	dets[0].Keypoints[0].X, dets[0].Box.X0 = -1, -1
	got, _ := tr.Check(base, t0.Add(frame))
	got[0].Keypoints[1].Y = -1
	again, _ := tr.Check(base, t0.Add(2*frame))
	if again[0].Box != want.Box || again[0].Keypoints[0] != want.Keypoints[0] || again[0].Keypoints[1] != want.Keypoints[1] {
		t.Fatalf("tracker memory changed through a copy: %+v, want %+v", again[0], want)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string // substring of the error; "" valid
	}{
		{Config{}, ""},
		{DefaultConfig(), ""},
		{Config{Threshold: 4, MaxFrames: 1}, ""},
		{Config{Threshold: 4, MaxFrames: 1, Size: 4}, ""},
		{Config{Threshold: -1, MaxFrames: 1}, "Threshold"},
		{Config{Threshold: math.NaN(), MaxFrames: 1}, "Threshold"},
		{Config{Threshold: 300, MaxFrames: 1}, "Threshold"},
		{Config{Threshold: 4}, "MaxFrames must be at least 1"},
		{Config{Threshold: 4, MaxFrames: -2}, "MaxFrames"},
		{Config{Threshold: 4, MaxFrames: MaxMaxFrames + 1}, "MaxFrames"},
		{Config{Threshold: 4, MaxFrames: 2, MaxAge: -time.Second}, "MaxAge"},
		{Config{Threshold: 4, MaxFrames: 2, Size: 3}, "Size"},
		{Config{Threshold: 4, MaxFrames: 2, Size: 65}, "Size"},
	}
	for _, tc := range tests {
		err := tc.cfg.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
		if _, nerr := New(tc.cfg); (nerr == nil) != (err == nil) {
			t.Errorf("New(%+v) = %v, Validate %v", tc.cfg, nerr, err)
		}
	}
	if DefaultConfig().Enabled() != true || (Config{}).Enabled() {
		t.Error("Enabled")
	}
	tr, _ := New(Config{Threshold: 1, MaxFrames: 1})
	if tr.Config().Size != DefaultSize {
		t.Errorf("size not defaulted: %+v", tr.Config())
	}
}

// TestThumbnail: a flat box gives its luma in every cell, and the grid
// covers the whole box (a bright last row and column reach the last cells).
func TestThumbnail(t *testing.T) {
	img := imageio.NewRGB(64, 48)
	for i := range img.Pix {
		img.Pix[i] = 100
	}
	r := rect{8, 4, 40, 36} // 32x32
	for y := r.y0; y < r.y1; y++ {
		o := img.Offset(r.x1-1, y)
		img.Pix[o], img.Pix[o+1], img.Pix[o+2] = 255, 255, 255
	}
	out := make([]float32, 16)
	thumbnail(img, r, 4, out)
	for i, v := range out {
		want := float32(100)
		if i%4 == 3 {
			want = (7*100 + 255) / 8.0
		}
		if math.Abs(float64(v-want)) > 0.6 {
			t.Errorf("cell %d: %.2f, want %.2f", i, v, want)
		}
	}
}

// FuzzCheck: any frame and box never panic; a frame compared with itself is
// always reused with a zero difference when its box is trackable.
func FuzzCheck(f *testing.F) {
	f.Add(uint8(40), uint8(30), 5.0, 5.0, 30.0, 25.0, []byte{1, 2, 3})
	f.Add(uint8(16), uint8(16), -10.0, -10.0, 100.0, 100.0, []byte{255})
	f.Add(uint8(20), uint8(20), math.NaN(), 0.0, 10.0, 10.0, []byte{})
	f.Add(uint8(20), uint8(20), 0.0, 0.0, math.Inf(1), 10.0, []byte{9})
	f.Fuzz(func(t *testing.T, w, h uint8, x0, y0, x1, y1 float64, pix []byte) {
		img := imageio.NewRGB(int(w), int(h))
		for i := range img.Pix {
			if len(pix) > 0 {
				img.Pix[i] = pix[i%len(pix)] ^ byte(i*31)
			}
		}
		tr, err := New(Config{Threshold: 1, MaxFrames: 2, Size: 8})
		if err != nil {
			t.Fatal(err)
		}
		d := detect.Detection{Box: detect.Box{X0: x0, Y0: y0, X1: x1, Y1: y1}}
		tr.Update(img, []detect.Detection{d}, t0)
		_, trackable := clip(d.Box, img.W, img.H, 8)
		got, dec := tr.Check(img, t0.Add(frame))
		if dec.Reuse != trackable || (trackable && (dec.Diff != 0 || len(got) != 1)) {
			t.Fatalf("box %+v in %dx%d: trackable %v, decision %+v", d.Box, w, h, trackable, dec)
		}
		if !trackable && dec.Reason != Untrackable {
			t.Fatalf("untrackable box %+v: reason %q", d.Box, dec.Reason)
		}
	})
}

func benchCheck(b *testing.B, w, h int, p patch) {
	img := scene(w, h, []patch{p}, 0, 0, 0)
	tr, err := New(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	tr.Update(img, []detect.Detection{det(p)}, t0)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		tr.reused = 0
		if _, d := tr.Check(img, t0.Add(frame)); !d.Reuse {
			b.Fatal(d)
		}
	}
}

// BenchmarkCheck is the per-frame cost of a reuse decision (one face),
// against ~5 ms for a BlazeFace detection.
func BenchmarkCheck(b *testing.B) {
	b.Run("640x480_face200", func(b *testing.B) { benchCheck(b, 640, 480, patch{x: 200, y: 120, size: 200, seed: 1}) })
	b.Run("1280x720_face400", func(b *testing.B) { benchCheck(b, 1280, 720, patch{x: 400, y: 150, size: 400, seed: 1}) })
	b.Run("128x96_face40", func(b *testing.B) { benchCheck(b, 128, 96, patch{x: 50, y: 20, size: 40, seed: 1}) })
}

func BenchmarkUpdate(b *testing.B) {
	p := patch{x: 200, y: 120, size: 200, seed: 1}
	img := scene(640, 480, []patch{p}, 0, 0, 0)
	tr, err := New(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	dets := []detect.Detection{det(p)}
	b.ReportAllocs()
	for b.Loop() {
		tr.Update(img, dets, t0)
	}
}
