package infer

import (
	"errors"
	"image"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/facegate/facegate/infer/imageio"
	"github.com/facegate/facegate/infer/quality"
)

func openPipeline(t *testing.T) *Pipeline { return openPipelineWith(t, "blazeface-short") }

func openPipelineWith(t *testing.T, detector string) *Pipeline {
	t.Helper()
	dm, err := Load(TestModelDir(t, detector), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dm.Close() })
	em, err := Load(TestModelDir(t, "dlib-resnet-v1"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { em.Close() })
	det, err := NewDetector(dm, DetectorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	emb, err := NewEmbedder(em)
	if err != nil {
		t.Fatal(err)
	}
	return &Pipeline{Det: det, Emb: emb, PadRetry: 0.25}
}

func readImage(t *testing.T, path string) *imageio.RGB {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := imageio.DecodeBytes(b, imageio.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestPipelineLFWFace(t *testing.T) {
	p := openPipeline(t)
	data := TestDataDir(t)
	img := readImage(t, filepath.Join(data, "faces", "lfw__Abel_Pacheco", "001.jpg"))
	faces, err := p.Detect(img)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Primary(faces, img.W, img.H)
	if err != nil {
		t.Fatal(err)
	}
	// LFW deep-funneled: 250x250, the face centred, about 110 px.
	cx, cy := (f.Box.X0+f.Box.X1)/2, (f.Box.Y0+f.Box.Y1)/2
	if math.Abs(cx-125) > 20 || math.Abs(cy-125) > 25 || f.Box.W() < 70 || f.Box.W() > 170 {
		t.Fatalf("face box %+v not the centred LFW face", f.Box)
	}
	if f.Score < 0.7 {
		t.Fatalf("score %.2f", f.Score)
	}
	// The subject's right eye is on the image's left.
	r, l := f.keypoint("right_eye"), f.keypoint("left_eye")
	if r == nil || l == nil || r.X >= l.X || f.InterOcular() < 25 {
		t.Fatalf("eyes right=%v left=%v iod=%.1f", r, l, f.InterOcular())
	}
	q, err := p.Assess(img, f, quality.DefaultThresholds())
	if err != nil {
		t.Fatal(err)
	}
	if q.SharpnessOn != "chip" || q.InterOcular < 25 || q.Sharpness <= 0 || math.Abs(q.Yaw) > 45 {
		t.Fatalf("quality %s", q)
	}
	// The same face blurred fails the sharpness check, and says so.
	blurred, _ := imageio.Resize(img, 50, 50)
	blurred, _ = imageio.Resize(blurred, 250, 250)
	q2, err := p.Assess(blurred, f, quality.DefaultThresholds())
	if err != nil || q2.OK || !slices.Contains(q2.Failures, quality.CheckSharpness) || q2.Sharpness >= q.Sharpness {
		t.Fatalf("blurred face: %s (sharp: %.1f), %v", q2, q.Sharpness, err)
	}
	if err := p.Embed(img, []*Face{f}); err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, v := range f.Embedding {
		n += float64(v) * float64(v)
	}
	if len(f.Embedding) != 128 || math.Abs(n-1) > 1e-4 {
		t.Fatalf("embedding dim %d norm² %v", len(f.Embedding), n)
	}
}

func dist(a, b []float32) float64 {
	var s float64
	for i := range a {
		d := float64(a[i] - b[i])
		s += d * d
	}
	return math.Sqrt(s)
}

// TestPipelineSeparatesPeople: two photos of one person are closer than
// photos of two people, by a margin, through the whole pipeline.
func TestPipelineSeparatesPeople(t *testing.T) {
	p := openPipeline(t)
	data := TestDataDir(t)
	emb := func(rel string) []float32 {
		img := readImage(t, filepath.Join(data, "faces", rel))
		f, err := p.EmbedPrimary(img)
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		return f.Embedding
	}
	a1, a2 := emb("lfw__Akhmed_Zakayev/001.jpg"), emb("lfw__Akhmed_Zakayev/003.jpg")
	b := emb("lfw__Abel_Pacheco/001.jpg")
	same, diff1, diff2 := dist(a1, a2), dist(a1, b), dist(a2, b)
	if same > 0.45 || diff1 < 0.45 || diff2 < 0.45 {
		t.Fatalf("same %.3f, different %.3f %.3f", same, diff1, diff2)
	}
}

// TestPipelineSceneFindsSeveralFaces: the full-range detector finds the
// small faces of a group photo (the short-range one is for faces near the
// camera and misses them).
func TestPipelineSceneFindsSeveralFaces(t *testing.T) {
	p := openPipelineWith(t, "blazeface-full")
	img := readImage(t, filepath.Join(TestDataDir(t), "scenes", "frec_obama_and_biden.jpg"))
	faces, err := p.Detect(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(faces) < 2 {
		t.Fatalf("found %d faces in a photo of two people", len(faces))
	}
	ptrs := make([]*Face, len(faces))
	for i := range faces {
		ptrs[i] = &faces[i]
	}
	if err := p.Embed(img, ptrs); err != nil {
		t.Fatal(err)
	}
	if d := dist(faces[0].Embedding, faces[1].Embedding); d < 0.45 {
		t.Fatalf("two different people at distance %.3f", d)
	}
}

func TestPipelineNoFace(t *testing.T) {
	p := openPipeline(t)
	img := imageio.NewRGB(320, 240)
	for i := range img.Pix {
		img.Pix[i] = uint8((i * 37) % 251) // a texture, no face
	}
	_, err := p.EmbedPrimary(img)
	if !errors.Is(err, ErrNoFace) {
		t.Fatalf("err = %v, want ErrNoFace", err)
	}
	if _, err := p.Det.Detect(&imageio.RGB{W: 10, H: 10, Pix: make([]uint8, 5)}); err == nil {
		t.Fatal("detect accepted a corrupt image")
	}
}

// TestPipelinePadRetry: in a tight crop, where the face fills the frame,
// the padded second pass finds the face, with eyes where they are in the
// crop: closer than without padding, within a fifth of the eye distance.
func TestPipelinePadRetry(t *testing.T) {
	p := openPipeline(t)
	var sumPadded, sumPlain float64
	for _, rel := range []string{"lfw__Abel_Pacheco/001.jpg", "lfw__Akhmed_Zakayev/001.jpg", "lfw__Akhmed_Zakayev/003.jpg"} {
		img := readImage(t, filepath.Join(TestDataDir(t), "faces", rel))
		faces, _ := p.Detect(img)
		f, err := Primary(faces, img.W, img.H)
		if err != nil {
			t.Fatal(err)
		}
		r := imageRect(f.Box.X0, f.Box.Y0, f.Box.X1, f.Box.Y1)
		crop := img.Crop(r)
		eyeErr := func(g *Face) float64 {
			var e float64
			for _, k := range []string{"right_eye", "left_eye"} {
				a, b := f.keypoint(k), g.keypoint(k)
				e = max(e, math.Hypot(a.X-float64(r.Min.X)-b.X, a.Y-float64(r.Min.Y)-b.Y))
			}
			return e
		}
		got, err := p.Detect(crop)
		if err != nil || len(got) == 0 {
			t.Fatalf("%s: no face in the tight crop: %v", rel, err)
		}
		padded, _ := Primary(got, crop.W, crop.H)
		plain := *p
		plain.PadRetry = 0
		got, _ = plain.Detect(crop)
		errPadded := eyeErr(padded)
		t.Logf("%s: eye error %.1f px padded, iod %.1f", rel, errPadded, f.InterOcular())
		if !padded.Padded || errPadded > 0.2*f.InterOcular() {
			t.Errorf("%s: padded=%v, eye error %.1f px > 20%% of %.1f", rel, padded.Padded, errPadded, f.InterOcular())
		}
		errPlain := math.Inf(1)
		if len(got) > 0 {
			unpadded, _ := Primary(got, crop.W, crop.H)
			errPlain = eyeErr(unpadded)
		}
		t.Logf("%s: eye error %.1f px without padding", rel, errPlain)
		sumPadded += errPadded
		sumPlain += errPlain
	}
	if sumPadded > sumPlain {
		t.Errorf("padding made the eyes worse on average: %.1f vs %.1f px summed", sumPadded, sumPlain)
	}
}

func imageRect(x0, y0, x1, y1 float64) image.Rectangle {
	return image.Rect(int(math.Floor(x0)), int(math.Floor(y0)), int(math.Ceil(x1)), int(math.Ceil(y1)))
}
