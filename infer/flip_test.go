package infer

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/facegate/facegate/infer/align"
)

func TestMirrorChip(t *testing.T) {
	const size = 3
	src := make([]float32, 3*size*size)
	for i := range src {
		src[i] = float32(i)
	}
	dst := make([]float32, len(src))
	MirrorChip(dst, src, size)
	// Row 0 is pixels (0,1,2),(3,4,5),(6,7,8): mirrored (6,7,8),(3,4,5),(0,1,2).
	want := []float32{6, 7, 8, 3, 4, 5, 0, 1, 2}
	for i, w := range want {
		if dst[i] != w {
			t.Fatalf("mirrored row 0 = %v, want %v", dst[:9], want)
		}
	}
	back := make([]float32, len(src))
	MirrorChip(back, dst, size)
	for i := range src {
		if back[i] != src[i] {
			t.Fatalf("mirroring twice changed value %d: %v != %v", i, back[i], src[i])
		}
	}
}

func flipMaxDiff(a, b []float32) float64 {
	var m float64
	for i := range a {
		m = max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}

// TestEmbedFlip checks flip test-time augmentation on the astronaut's real
// aligned chip with each shipped embedder: the flipped embedding of the
// mirrored chip equals that of the chip, is the normalised sum of the plain
// embeddings of chip and mirror, differs from the plain embedding, and a
// batch of two different chips keeps each chip's own result.
func TestEmbedFlip(t *testing.T) {
	for _, model := range []string{"dlib-resnet-v1", "sface-2021dec"} {
		t.Run(model, func(t *testing.T) {
			p := openPipelineWith(t, "blazeface-short")
			em, err := Load(TestModelDir(t, model), Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { em.Close() })
			if p.Emb, err = NewEmbedder(em); err != nil {
				t.Fatal(err)
			}
			e := p.Emb
			img := readImage(t, filepath.Join(repoRoot(), "testdata", "astronaut.jpg"))
			faces, err := p.Detect(img)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Primary(faces, img.W, img.H)
			if err != nil {
				t.Fatal(err)
			}
			var kps []align.Point
			for _, pt := range f.Keypoints {
				kps = append(kps, align.Point{pt.X, pt.Y})
			}
			n := e.ChipLen()
			chips := make([]float32, 4*n) // chip, mirror, darker chip, its mirror
			if _, err := e.Align(img, kps, f.Names, chips[:n]); err != nil {
				t.Fatal(err)
			}
			MirrorChip(chips[n:2*n], chips[:n], e.Size())
			for i := range n {
				chips[2*n+i] = 0.6 * chips[i]
			}
			MirrorChip(chips[3*n:], chips[2*n:3*n], e.Size())

			if e.Flip() {
				t.Fatal("flip is on by default")
			}
			plain, err := e.EmbedChips(chips, 4)
			if err != nil {
				t.Fatal(err)
			}
			e.SetFlip(true)
			defer e.SetFlip(false)
			flip, err := e.EmbedChips(chips, 4)
			if err != nil {
				t.Fatal(err)
			}
			if len(flip) != 4 || len(flip[0]) != e.Dim() {
				t.Fatalf("flip gave %d embeddings of %d, want 4 of %d", len(flip), len(flip[0]), e.Dim())
			}
			const tol = 2e-5
			if d := flipMaxDiff(flip[0], flip[1]); d > tol {
				t.Errorf("flip(chip) and flip(mirror) differ by %g, want <= %g", d, tol)
			}
			if d := flipMaxDiff(flip[2], flip[3]); d > tol {
				t.Errorf("flip(dark chip) and flip(its mirror) differ by %g", d)
			}
			if d := flipMaxDiff(flip[0], flip[2]); d < 1e-3 {
				t.Errorf("two different chips in one flipped batch got the same embedding (max diff %g)", d)
			}
			if d := flipMaxDiff(flip[0], plain[0]); d < 1e-3 {
				t.Errorf("flip embedding equals the plain one (max diff %g)", d)
			}
			// The normalised sum of the plain embeddings of chip and mirror.
			sum := make([]float32, e.Dim())
			var s float64
			for j := range sum {
				sum[j] = plain[0][j] + plain[1][j]
				s += float64(sum[j]) * float64(sum[j])
			}
			for j := range sum {
				sum[j] = float32(float64(sum[j]) / math.Sqrt(s))
			}
			if d := flipMaxDiff(flip[0], sum); d > tol {
				t.Errorf("flip embedding differs from the normalised sum of plain chip and mirror by %g", d)
			}
			var norm float64
			for _, v := range flip[0] {
				norm += float64(v) * float64(v)
			}
			if math.Abs(norm-1) > 1e-4 {
				t.Errorf("flip embedding norm² %v, want 1", norm)
			}
			// One chip alone gives what it gave in the batch.
			one, err := e.EmbedChips(chips[2*n:3*n], 1)
			if err != nil {
				t.Fatal(err)
			}
			if d := flipMaxDiff(one[0], flip[2]); d > tol {
				t.Errorf("flip of one chip alone differs from the same chip in a batch by %g", d)
			}
			t.Logf("%s: plain vs flip max diff %.4f, cos(chip, mirror) plain %.4f", model, flipMaxDiff(flip[0], plain[0]), flipDot(plain[0], plain[1]))
		})
	}
}

func flipDot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}
