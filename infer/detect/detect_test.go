package detect

import (
	"errors"
	"math"
	"testing"

	"github.com/facegate/facegate/infer/manifest"
)

func TestAnchorsBlazeFaceLayouts(t *testing.T) {
	cases := []struct {
		name  string
		spec  manifest.AnchorSpec
		size  int
		count int
	}{
		{"short range", manifest.AnchorSpec{Strides: []int{8, 16}, AnchorsPerLocation: []int{2, 6}, Offset: 0.5, Count: 896}, 128, 896},
		{"full range", manifest.AnchorSpec{Strides: []int{4}, AnchorsPerLocation: []int{1}, Offset: 0.5, Count: 2304}, 192, 2304},
	}
	for _, c := range cases {
		a, err := Anchors(c.spec, c.size)
		if err != nil || len(a) != c.count {
			t.Fatalf("%s: %d anchors, %v", c.name, len(a), err)
		}
		// First anchor sits in the centre of the top-left cell.
		g := float64((c.size + c.spec.Strides[0] - 1) / c.spec.Strides[0])
		if a[0].X != 0.5/g || a[0].Y != 0.5/g {
			t.Fatalf("%s: first anchor %+v", c.name, a[0])
		}
	}
	if _, err := Anchors(manifest.AnchorSpec{Strides: []int{8, 16}, AnchorsPerLocation: []int{2, 6}, Offset: 0.5, Count: 900}, 128); !errors.Is(err, ErrSpec) {
		t.Fatalf("wrong count accepted: %v", err)
	}
	if _, err := Anchors(manifest.AnchorSpec{Strides: []int{8}, AnchorsPerLocation: []int{2, 6}}, 128); !errors.Is(err, ErrSpec) {
		t.Fatalf("mismatched layout accepted: %v", err)
	}
}

func TestDecodeAndNMS(t *testing.T) {
	d := &Decoder{Anchors: []Anchor{{0.5, 0.5}, {0.5, 0.5}, {0.25, 0.25}}, Size: 100, Keypoints: 1, BoxScale: 100, Logits: true, MinScore: 0.5, IoU: 0.3}
	// Two overlapping candidates around (50,50) and one weak one elsewhere.
	boxes := []float32{
		0, 0, 20, 20, -5, -5, // box 40..60, keypoint at 45,45, score sigmoid(2)
		2, 2, 20, 20, -3, -3, // box 42..62, keypoint at 47,47, score sigmoid(0)=0.5
		0, 0, 10, 10, 0, 0, // weak: sigmoid(-3)
	}
	scores := []float32{2, 0, -3}
	dets, err := d.Decode(boxes, scores)
	if err != nil {
		t.Fatal(err)
	}
	if len(dets) != 1 {
		t.Fatalf("got %d detections, want the two overlapping merged and the weak one dropped: %+v", len(dets), dets)
	}
	w1, w2 := sigmoid(2), 0.5
	wantX0 := (w1*40 + w2*42) / (w1 + w2)
	if math.Abs(dets[0].Box.X0-wantX0) > 1e-9 || dets[0].Score != w1 {
		t.Fatalf("merged box %+v score %v, want X0 %v score %v", dets[0].Box, dets[0].Score, wantX0, w1)
	}
	wantKP := (w1*45 + w2*47) / (w1 + w2)
	if math.Abs(dets[0].Keypoints[0].X-wantKP) > 1e-9 {
		t.Fatalf("merged keypoint %+v, want %v", dets[0].Keypoints[0], wantKP)
	}
	if _, err := d.Decode(boxes[:5], scores); !errors.Is(err, ErrSpec) {
		t.Fatalf("short outputs: %v", err)
	}
}

func TestNMSKeepsSeparateFaces(t *testing.T) {
	c := []Detection{
		{Box: Box{0, 0, 10, 10}, Score: 0.6},
		{Box: Box{50, 50, 60, 60}, Score: 0.9},
		{Box: Box{1, 1, 11, 11}, Score: 0.7},
	}
	out := WeightedNMS(c, 0.3)
	if len(out) != 2 || out[0].Score != 0.9 || out[1].Score != 0.7 {
		t.Fatalf("%+v", out)
	}
}

func TestLetterboxRoundTrip(t *testing.T) {
	for _, c := range []struct{ w, h int }{{640, 480}, {480, 640}, {128, 128}, {1920, 1080}} {
		l := NewLetterbox(c.w, c.h, 128)
		p := Point{X: 0.3 * float64(c.w), Y: 0.7 * float64(c.h)}
		q := l.ToImage(l.ToInput(p))
		if math.Abs(p.X-q.X) > 1e-9 || math.Abs(p.Y-q.Y) > 1e-9 {
			t.Fatalf("%dx%d: %v -> %v", c.w, c.h, p, q)
		}
		// The image's corners land inside the input, centred.
		tl, br := l.ToInput(Point{0, 0}), l.ToInput(Point{float64(c.w), float64(c.h)})
		if tl.X < -1e-9 || tl.Y < -1e-9 || br.X > 128+1e-9 || br.Y > 128+1e-9 || math.Abs(tl.X-(128-br.X)) > 1 || br.X-tl.X != float64(l.W) {
			t.Fatalf("%dx%d: corners %v %v", c.w, c.h, tl, br)
		}
	}
}

func TestIoU(t *testing.T) {
	if v := IoU(Box{0, 0, 10, 10}, Box{5, 0, 15, 10}); math.Abs(v-1.0/3) > 1e-12 {
		t.Fatal(v)
	}
	if IoU(Box{0, 0, 1, 1}, Box{2, 2, 3, 3}) != 0 {
		t.Fatal("disjoint boxes overlap")
	}
}
