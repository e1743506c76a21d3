package infer

import (
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/facegate/facegate/infer/align"
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

// padImage is img framed by pad black pixels on every side: what
// Pipeline.Detect used to build for its second pass.
func padImage(img *imageio.RGB, pad int) *imageio.RGB {
	out := imageio.NewRGB(img.W+2*pad, img.H+2*pad)
	for y := 0; y < img.H; y++ {
		copy(out.Pix[out.Offset(pad, y+pad):], img.Pix[3*y*img.W:3*(y+1)*img.W])
	}
	return out
}

// frameImages are images of the sizes the per-frame path sees.
func frameImages(t *testing.T) []*imageio.RGB {
	data := TestDataDir(t)
	return []*imageio.RGB{
		readImage(t, filepath.Join(data, "resolution_ladder", "frec_obama-480p.jpg")),
		readImage(t, filepath.Join(data, "faces", "lfw__Abel_Pacheco", "001.jpg")),
		readImage(t, filepath.Join(data, "resolution_ladder", "frec_obama-720p.jpg")),
		readImage(t, filepath.Join(data, "faces", "lfw__Akhmed_Zakayev", "003.jpg")),
	}
}

// TestDetectPaddedMatchesPaddedImage: the second pass letterboxes the frame
// with its padding without building the padded image, and finds exactly
// what detecting on the padded image finds.
func TestDetectPaddedMatchesPaddedImage(t *testing.T) {
	p := openPipeline(t)
	found := 0
	for i, img := range frameImages(t) {
		for _, pad := range []int{0, 17, int(math.Round(p.PadRetry * float64(max(img.W, img.H))))} {
			want, err := p.Det.Detect(padImage(img, pad))
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Det.detectPadded(img, pad)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("image %d pad %d: %+v, on the padded image %+v", i, pad, got, want)
			}
			found += len(got)
		}
	}
	if found < 8 {
		t.Fatalf("%d faces in all: too few to compare", found)
	}
}

// frameResult is what the per-frame path computes for one image.
type frameResult struct {
	faces  []Face
	report quality.Report
}

// analyseSerial runs Detect and AssessEmbed on the largest face.
func analyseSerial(p *Pipeline, img *imageio.RGB) (frameResult, error) {
	faces, err := p.Detect(img)
	if err != nil || len(faces) == 0 {
		return frameResult{}, fmt.Errorf("%d faces: %v", len(faces), err)
	}
	f := &faces[0]
	for i := range faces {
		if faces[i].Box.Area() > f.Box.Area() {
			f = &faces[i]
		}
	}
	r, err := p.AssessEmbed(img, f, quality.DefaultThresholds())
	return frameResult{faces, r}, err
}

// TestPipelineBuffersReused: the pooled buffers of the detector and the
// embedder, reused across images of different sizes, give what fresh
// buffers give, and AssessEmbed gives exactly what Assess (with a chip from
// align.CropRGB) and Embed (with a chip from align.Crop) give.
func TestPipelineBuffersReused(t *testing.T) {
	p := openPipeline(t)
	imgs := frameImages(t)
	embedded := 0
	for round := 0; round < 2; round++ {
		for i, img := range imgs {
			// Fresh Detector and Embedder: nothing pooled yet.
			det, err := NewDetector(p.Det.Model(), DetectorConfig{})
			if err != nil {
				t.Fatal(err)
			}
			emb, err := NewEmbedder(p.Emb.Model())
			if err != nil {
				t.Fatal(err)
			}
			fresh := &Pipeline{Det: det, Emb: emb, PadRetry: p.PadRetry}
			want, err := analyseSerial(fresh, img)
			if err != nil {
				t.Fatalf("image %d: %v", i, err)
			}
			got, err := analyseSerial(p, img)
			if err != nil {
				t.Fatalf("image %d: %v", i, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d image %d: reused buffers gave\n%+v\nfresh ones\n%+v", round, i, got, want)
			}
			checkAgainstCrop(t, p, img, got)
			if got.report.OK {
				embedded++
			}
		}
	}
	if embedded < 4 {
		t.Fatalf("%d faces embedded in two rounds of %d images", embedded, len(imgs))
	}
}

// checkAgainstCrop recomputes the primary face of r the way Assess and
// Embed did before they shared pooled chips.
func checkAgainstCrop(t *testing.T, p *Pipeline, img *imageio.RGB, r frameResult) {
	t.Helper()
	f := &r.faces[0]
	for i := range r.faces {
		if r.faces[i].Box.Area() > f.Box.Area() {
			f = &r.faces[i]
		}
	}
	if r.report.OK != (f.Embedding != nil) {
		t.Fatalf("quality %s, embedded %v", r.report, f.Embedding != nil)
	}
	pts := make([]align.Point, len(f.Keypoints))
	for i, k := range f.Keypoints {
		pts[i] = align.Point{k.X, k.Y}
	}
	sel, err := p.Emb.Template().Select(pts, f.Names)
	if err != nil {
		t.Fatal(err)
	}
	chipRGB, _, err := align.CropRGB(img, sel, p.Emb.Template())
	if err != nil {
		t.Fatal(err)
	}
	kps, err := quality.KeypointsFrom(pts, f.Names)
	if err != nil {
		t.Fatal(err)
	}
	want, err := quality.Assess(img, quality.Face{Box: quality.Box{X0: f.Box.X0, Y0: f.Box.Y0, X1: f.Box.X1, Y1: f.Box.Y1}, Keypoints: kps, Chip: chipRGB}, quality.DefaultThresholds())
	if err != nil || !reflect.DeepEqual(r.report, want) {
		t.Fatalf("report %+v, with align.CropRGB's chip %+v (%v)", r.report, want, err)
	}
	if !r.report.OK {
		return
	}
	chip := make([]float32, p.Emb.ChipLen())
	m, err := align.Crop(img, sel, p.Emb.Template(), chip)
	if err != nil {
		t.Fatal(err)
	}
	emb, err := p.Emb.EmbedChips(chip, 1)
	if err != nil {
		t.Fatal(err)
	}
	if f.Transform != m || !slices.Equal(f.Embedding, emb[0]) {
		t.Fatalf("transform %+v embedding %v, from a fresh chip %+v %v", f.Transform, f.Embedding[:4], m, emb[0][:4])
	}
	// Embed, the batch path, agrees too.
	g := Face{Detection: f.Detection, Names: f.Names}
	if err := p.Embed(img, []*Face{&g}); err != nil {
		t.Fatal(err)
	}
	if g.Transform != m || !slices.Equal(g.Embedding, emb[0]) {
		t.Fatal("Embed differs from AssessEmbed")
	}
}

// TestAssessEmbedFailingFace: a face that fails a check is reported as by
// Assess and not embedded.
func TestAssessEmbedFailingFace(t *testing.T) {
	p := openPipeline(t)
	img := readImage(t, filepath.Join(TestDataDir(t), "faces", "lfw__Abel_Pacheco", "001.jpg"))
	faces, err := p.Detect(img)
	if err != nil || len(faces) == 0 {
		t.Fatalf("%d faces: %v", len(faces), err)
	}
	th := quality.DefaultThresholds()
	th.MinInterOcular = 1000
	want, err := p.Assess(img, &faces[0], th)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.AssessEmbed(img, &faces[0], th)
	if err != nil || got.OK || !reflect.DeepEqual(got, want) {
		t.Fatalf("AssessEmbed %+v (%v), Assess %+v", got, err, want)
	}
	if faces[0].Embedding != nil || faces[0].Transform != (align.Similarity{}) {
		t.Fatal("a failing face was embedded")
	}
	if _, err := (&Pipeline{Det: p.Det}).AssessEmbed(img, &faces[0], th); err == nil {
		t.Fatal("AssessEmbed without an embedder did not fail")
	}
}

// TestPipelineConcurrent: goroutines sharing one pipeline (and so its
// pooled buffers) get the serial results. Run with -race.
func TestPipelineConcurrent(t *testing.T) {
	p := openPipeline(t)
	imgs := frameImages(t)
	want := make([]frameResult, len(imgs))
	for i, img := range imgs {
		var err error
		if want[i], err = analyseSerial(p, img); err != nil {
			t.Fatal(err)
		}
	}
	const workers, rounds = 4, 3
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func() {
			for r := 0; r < rounds; r++ {
				for k := range imgs {
					i := (k + w) % len(imgs)
					got, err := analyseSerial(p, imgs[i])
					if err == nil && !reflect.DeepEqual(got, want[i]) {
						err = fmt.Errorf("worker %d image %d: %+v, serially %+v", w, i, got, want[i])
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestLargest(t *testing.T) {
	face := func(w float64) Face {
		var f Face
		f.Box.X1, f.Box.Y1 = w, w
		return f
	}
	if Largest(nil) != nil {
		t.Fatal("Largest of no faces is not nil")
	}
	faces := []Face{face(10), face(30), face(20), face(30)}
	if got := Largest(faces); got != &faces[1] {
		t.Fatalf("Largest picked %+v, want the first 30-px face", got.Box)
	}
}
