package infer_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/detect"
	"github.com/facegate/facegate/infer/imageio"
	"github.com/facegate/facegate/infer/manifest"
	"github.com/facegate/facegate/internal/imagetest"
)

// padModels are the PAD models models/minifasnet.py exports, in the order
// PAD reports them here.
var padModels = []string{"minifasnet-v2", "minifasnet-v1se"}

// padLogitTol bounds |Go - Python| on the logits of the same crops: both
// run float32 TensorFlow graphs of the same weights.
const padLogitTol = 1e-5

func padSamplesDir() string {
	return filepath.Join("..", "models", "third_party", "minifasnet", "samples")
}

func openPAD(t testing.TB, cfg infer.PADConfig) *infer.PAD {
	t.Helper()
	dirs := make([]string, len(padModels))
	for i, n := range padModels {
		dirs[i] = infer.TestModelDir(t, n)
	}
	p, closeFn, err := infer.OpenPAD(dirs, benchOptions(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeFn)
	return p
}

// padRef is what `models/minifasnet.py reference` wrote (mk/minifasnet.mk,
// `make test`): the authors' sample crops, cut in Python from the decoded
// images it saved as PPM, and the Keras logits for them.
type padRef struct {
	CropsFile string `json:"crops_file"`
	Size      int    `json:"size"`
	Entries   []struct {
		Sample    string    `json:"sample"`
		Image     string    `json:"image"`
		Box       []float64 `json:"box"` // x, y, w, h
		Model     string    `json:"model"`
		Scale     float64   `json:"scale"`
		Rect      []int     `json:"rect"` // x0, y0, x1, y1 inclusive
		Logits    []float64 `json:"logits"`
		Label     string    `json:"label"`
		Published float64   `json:"published"`
	} `json:"entries"`
	dir   string
	crops []uint8 // [n,size,size,3] BGR
}

func readPADRef(t *testing.T) *padRef {
	t.Helper()
	dir := os.Getenv("FACEGATE_MINIFASNET_REF")
	if dir == "" {
		dir = filepath.Join(filepath.Dir(filepath.Dir(infer.TestModelDir(t, padModels[0]))), "minifasnet-ref")
	}
	b, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("MiniFASNet reference missing under CI=true (run `make test`): %v", err)
		}
		t.Skipf("MiniFASNet reference not made (run `make minifasnet-ref`): %v", err)
	}
	var ref padRef
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	ref.dir = dir
	if ref.crops, err = os.ReadFile(filepath.Join(dir, ref.CropsFile)); err != nil {
		t.Fatal(err)
	}
	if len(ref.Entries) == 0 || len(ref.crops) != len(ref.Entries)*3*ref.Size*ref.Size {
		t.Fatalf("reference: %d entries, %d crop bytes", len(ref.Entries), len(ref.crops))
	}
	return &ref
}

func xywh(b []float64) detect.Box {
	return detect.Box{X0: b[0], Y0: b[1], X1: b[0] + b[2], Y1: b[1] + b[3]}
}

// Go's crop of the same decoded image with the same box is Python's crop,
// byte for byte (the authors' rule and OpenCV's resize in both).
func TestPADCropMatchesPython(t *testing.T) {
	ref := readPADRef(t)
	per := 3 * ref.Size * ref.Size
	dst := make([]float32, per)
	var rs infer.PADResizer
	for i, e := range ref.Entries {
		img := imagetest.DecodeFile(t, filepath.Join(ref.dir, e.Image))
		r, err := infer.PADCrop(dst, img, xywh(e.Box), e.Scale, ref.Size, true, &rs)
		if err != nil {
			t.Fatal(err)
		}
		if want := image.Rect(e.Rect[0], e.Rect[1], e.Rect[2]+1, e.Rect[3]+1); r != want {
			t.Errorf("%s %s: crop %v, Python %v", e.Sample, e.Model, r, want)
		}
		diff := 0
		for k, v := range ref.crops[i*per : (i+1)*per] {
			if float32(v) != dst[k] {
				diff++
			}
		}
		if diff != 0 {
			t.Errorf("%s %s: %d of %d crop values differ from Python's", e.Sample, e.Model, diff, per)
		}
	}
}

// The SavedModels run from Go give Python's Keras logits on the same crops.
func TestPADLogitsMatchPython(t *testing.T) {
	ref := readPADRef(t)
	p := openPAD(t, infer.PADConfig{})
	per := 3 * ref.Size * ref.Size
	worst := 0.0
	for mi, name := range padModels {
		var crops []float32
		var want [][]float64
		for i, e := range ref.Entries {
			if e.Model != name {
				continue
			}
			for _, v := range ref.crops[i*per : (i+1)*per] {
				crops = append(crops, float32(v))
			}
			want = append(want, e.Logits)
		}
		if len(want) == 0 {
			t.Fatalf("no reference entries for %s", name)
		}
		got, err := p.ClassifyCrops(mi, crops, len(want))
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range want {
			for k, v := range got.Row(i) {
				worst = max(worst, math.Abs(float64(v)-w[k]))
			}
		}
	}
	t.Logf("Go vs Python logits on %d crops: max abs diff %.2g", len(ref.Entries), worst)
	if worst > padLogitTol {
		t.Fatalf("Go vs Python logits differ by %g > %g", worst, padLogitTol)
	}
}

// The authors' samples through facegate's own pipeline: BlazeFace finds the
// face, PAD maps its box, crops and scores it.
func TestPADSamplesThroughPipeline(t *testing.T) {
	pipe, closeFn, err := infer.OpenPipeline(infer.TestModelDir(t, "blazeface-short"), "", benchOptions(), infer.DetectorConfig{}, 0.25)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	detName := pipe.Det.Model().Manifest().Name
	p := openPAD(t, infer.PADConfig{Detector: detName})
	for i := range padModels {
		if _, ok := p.BoxMapping(i); !ok {
			t.Errorf("%s has no box mapping for %s", padModels[i], detName)
		}
	}
	for _, c := range []struct {
		file string
		real bool
	}{{"image_F1.jpg", false}, {"image_F2.jpg", false}, {"image_T1.jpg", true}} {
		img := imagetest.DecodeFile(t, filepath.Join(padSamplesDir(), c.file))
		faces, err := pipe.Detect(img)
		if err != nil {
			t.Fatal(err)
		}
		f := infer.Largest(faces)
		if f == nil {
			t.Fatalf("%s: no face", c.file)
		}
		res, err := p.Score(img, f.Box)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Models) != len(padModels) {
			t.Fatalf("%s: %d model scores", c.file, len(res.Models))
		}
		t.Logf("%s: box %.0f,%.0f %.0fx%.0f p_real %.4f (%s %.4f crop %v, %s %.4f crop %v)", c.file,
			f.Box.X0, f.Box.Y0, f.Box.W(), f.Box.H(), res.PReal,
			res.Models[0].Model, res.Models[0].PReal, res.Models[0].Crop, res.Models[1].Model, res.Models[1].PReal, res.Models[1].Crop)
		if got := res.PReal >= 0.5; got != c.real {
			t.Errorf("%s: p_real %.4f, want real=%v", c.file, res.PReal, c.real)
		}
	}
}

func TestPADCropRect(t *testing.T) {
	// The same cases as models/tests/test_minifasnet.py.
	for _, c := range []struct {
		box   detect.Box
		scale float64
		want  image.Rectangle
	}{
		{xywh([]float64{300, 200, 40, 50}), 2.7, image.Rect(266, 157, 375, 293)},
		{xywh([]float64{0, 440, 40, 50}), 2.0, image.Rect(0, 379, 81, 480)},
		// Capped at (480-1)/200 = 2.395: the full height, centred horizontally.
		{xywh([]float64{300, 200, 100, 200}), 2.7, image.Rect(230, 0, 470, 480)},
		// A box hanging outside the frame is shifted in.
		{xywh([]float64{-30, -20, 60, 60}), 2.0, image.Rect(0, 0, 121, 121)},
	} {
		got, err := infer.PADCropRect(640, 480, c.box, c.scale)
		if err != nil || got != c.want {
			t.Errorf("PADCropRect(%+v, %g) = %v, %v; want %v", c.box, c.scale, got, err, c.want)
		}
	}
	for _, b := range []detect.Box{{X0: 10, Y0: 10, X1: 10, Y1: 30}, {X0: math.NaN(), Y0: 0, X1: 5, Y1: 5}} {
		if _, err := infer.PADCropRect(640, 480, b, 2); !errors.Is(err, infer.ErrInput) {
			t.Errorf("box %+v: err %v, want ErrInput", b, err)
		}
	}
}

func TestPADCropResize(t *testing.T) {
	// A 4x2 image shrunk to 2x1: OpenCV samples between pixel pairs and
	// rounds half up; (20+31)/2 = 25.5 -> 26. BGR swaps the channels.
	img := imageio.NewRGB(4, 2)
	for y := 0; y < 2; y++ {
		for x, v := range []uint8{0, 10, 20, 31} {
			copy(img.Pix[img.Offset(x, y):], []uint8{v, v / 2, 255 - v})
		}
	}
	var rs infer.PADResizer
	dst := make([]float32, 3*2*2)
	// The whole frame: a box whose 1x crop is the full 4x2 image, resized to 2x2.
	if _, err := infer.PADCrop(dst, img, detect.Box{X0: 0, Y0: 0, X1: 3, Y1: 1}, 1, 2, true, &rs); err != nil {
		t.Fatal(err)
	}
	want := []float32{250, 3, 5, 230, 13, 26, 250, 3, 5, 230, 13, 26} // (235+224)/2 = 229.5 -> 230
	if !slices.Equal(dst, want) {
		t.Fatalf("crop = %v, want %v", dst, want)
	}
	// Enlarging 2x2 -> 4x4 clamps at the edges and interpolates between.
	two := imageio.NewRGB(2, 2)
	copy(two.Pix, []uint8{0, 0, 0, 200, 200, 200, 0, 0, 0, 200, 200, 200})
	big := make([]float32, 3*4*4)
	if _, err := infer.PADCrop(big, two, detect.Box{X0: 0, Y0: 0, X1: 1, Y1: 1}, 1, 4, false, nil); err != nil {
		t.Fatal(err)
	}
	for y := 0; y < 4; y++ {
		row := []float32{big[12*y], big[12*y+3], big[12*y+6], big[12*y+9]}
		if !slices.Equal(row, []float32{0, 50, 150, 200}) {
			t.Fatalf("row %d = %v, want [0 50 150 200]", y, row)
		}
	}
	if _, err := infer.PADCrop(make([]float32, 10), img, detect.Box{X1: 3, Y1: 1}, 1, 2, true, nil); !errors.Is(err, infer.ErrInput) {
		t.Fatalf("short dst: %v", err)
	}
}

func TestMapBox(t *testing.T) {
	b := detect.Box{X0: 100, Y0: 200, X1: 140, Y1: 260} // 40x60, centre (120, 230)
	got := infer.MapBox(b, manifest.BoxMapping{OffsetX: 0.25, OffsetY: -0.5, ScaleX: 1.5, ScaleY: 0.5})
	want := detect.Box{X0: 130 - 30, Y0: 200 - 15, X1: 130 + 30, Y1: 200 + 15}
	if got != want {
		t.Fatalf("MapBox = %+v, want %+v", got, want)
	}
	if id := infer.MapBox(b, manifest.BoxMapping{ScaleX: 1, ScaleY: 1}); id != b {
		t.Fatalf("identity mapping moved the box: %+v", id)
	}
}

func TestNewPADRejects(t *testing.T) {
	m, err := infer.Load(infer.TestModelDir(t, "blazeface-short"), benchOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := infer.NewPAD([]*infer.Model{m}, infer.PADConfig{}); !errors.Is(err, infer.ErrNotPAD) {
		t.Fatalf("a detector as PAD: %v", err)
	}
	if _, err := infer.NewPAD(nil, infer.PADConfig{}); !errors.Is(err, infer.ErrNotPAD) {
		t.Fatalf("no models: %v", err)
	}
	pm, err := infer.Load(infer.TestModelDir(t, padModels[0]), benchOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer pm.Close()
	bad := manifest.BoxMapping{ScaleX: 0, ScaleY: 1}
	if _, err := infer.NewPAD([]*infer.Model{pm}, infer.PADConfig{Box: &bad}); err == nil {
		t.Fatal("a zero box scale was accepted")
	}
	p, err := infer.NewPAD([]*infer.Model{pm}, infer.PADConfig{Detector: "no-such-detector"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.BoxMapping(0); ok {
		t.Fatal("a mapping for a detector the manifest does not list")
	}
	if _, err := p.ScoreBoxes(imageio.NewRGB(0, 0), []detect.Box{{X1: 1, Y1: 1}}); err == nil {
		t.Fatal("an empty image was scored")
	}
}

// BenchmarkPAD times both models on one face of a 640x480 frame: crop and
// classify, per face, with 1 and 2 TensorFlow intra-op threads (the daemon
// runs 1 by default) (`go test -run '^$' -bench BenchmarkPAD ./infer`).
func BenchmarkPAD(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	img := imageio.NewRGB(640, 480)
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.IntN(256))
	}
	box := detect.Box{X0: 250, Y0: 170, X1: 390, Y1: 330}
	dirs := make([]string, len(padModels))
	for i, n := range padModels {
		dirs[i] = infer.TestModelDir(b, n)
	}
	for _, threads := range []int{1, 2} {
		b.Run("threads="+strconv.Itoa(threads), func(b *testing.B) {
			p, closeFn, err := infer.OpenPAD(dirs, infer.Options{IntraOpThreads: threads, InterOpThreads: 1, CPUOnly: true}, infer.PADConfig{})
			if err != nil {
				b.Fatal(err)
			}
			defer closeFn()
			if _, err := p.Score(img, box); err != nil { // warm-up
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := p.Score(img, box); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestPADBonaFideSurvey is a measurement, not a check: with
// FACEGATE_PAD_SURVEY=<out.tsv> it runs BlazeFace (blazeface-short, the
// largest face) and PAD over the colour photos of the shared face data
// (faces/lfw__*, faces/celeb5__*, faces/frec__*; at most
// FACEGATE_PAD_SURVEY_MAX images, default all), writes one line per face
// (path, p_real, each model's p_real) and logs the distribution and the
// p_real thresholds that reject 5 % and 1 % of these bona fide faces
// (BPCER 5 %, 1 %). FACEGATE_PAD_SURVEY_MAPPING=none scores the detector's
// boxes unmapped (default: the manifests' mapping for blazeface-short).
// FACEGATE_PAD_SURVEY_ROOT=<folder> surveys every image under that folder
// instead (e.g. video frames extracted with ffmpeg).
// docs/models/minifasnet.md records its output.
func TestPADBonaFideSurvey(t *testing.T) {
	out := os.Getenv("FACEGATE_PAD_SURVEY")
	if out == "" {
		t.Skip("a measurement: set FACEGATE_PAD_SURVEY=<out.tsv> to run it")
	}
	limit := math.MaxInt
	if s := os.Getenv("FACEGATE_PAD_SURVEY_MAX"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("FACEGATE_PAD_SURVEY_MAX: %v", err)
		}
		limit = n
	}
	root := os.Getenv("FACEGATE_PAD_SURVEY_ROOT")
	faces := root == ""
	if faces {
		root = filepath.Join(infer.TestDataDir(t), "faces")
	}
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() || (faces && !(strings.HasPrefix(rel, "lfw__") || strings.HasPrefix(rel, "celeb5__") || strings.HasPrefix(rel, "frec__"))) {
			return nil
		}
		files = append(files, path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	if len(files) > limit {
		files = files[:limit]
	}
	pipe, closeFn, err := infer.OpenPipeline(infer.TestModelDir(t, "blazeface-short"), "", benchOptions(), infer.DetectorConfig{}, 0.25)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	cfg := infer.PADConfig{Detector: pipe.Det.Model().Manifest().Name}
	switch m := os.Getenv("FACEGATE_PAD_SURVEY_MAPPING"); m {
	case "", "manifest":
	case "none":
		cfg.Detector = ""
	default:
		t.Fatalf("FACEGATE_PAD_SURVEY_MAPPING=%q: want manifest or none", m)
	}
	p := openPAD(t, cfg)
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "path\tp_real\t%s\n", strings.Join(padModels, "\t"))
	var scores []float64
	noFace := 0
	for _, path := range files {
		img := imagetest.DecodeFile(t, path)
		faces, err := pipe.Detect(img)
		if err != nil {
			t.Fatal(err)
		}
		face := infer.Largest(faces)
		if face == nil {
			noFace++
			continue
		}
		res, err := p.Score(img, face.Box)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, path)
		fmt.Fprintf(w, "%s\t%.6f", rel, res.PReal)
		for _, m := range res.Models {
			fmt.Fprintf(w, "\t%.6f", m.PReal)
		}
		fmt.Fprintln(w)
		scores = append(scores, res.PReal)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(scores) == 0 {
		t.Fatal("no faces scored")
	}
	sort.Float64s(scores)
	q := func(p float64) float64 { return scores[int(p*float64(len(scores)-1))] }
	t.Logf("%d images, %d faces (%d without a face): p_real min %.4f p1 %.4f p5 %.4f p10 %.4f median %.4f p90 %.4f max %.4f",
		len(files), len(scores), noFace, scores[0], q(0.01), q(0.05), q(0.10), q(0.5), q(0.9), scores[len(scores)-1])
	for _, bpcer := range []float64{0.05, 0.01} {
		// Rejecting p_real < threshold rejects at most bpcer of these faces.
		k := int(math.Floor(bpcer * float64(len(scores))))
		t.Logf("BPCER %.0f %%: threshold p_real %.4f (%d of %d bona fide faces below it)", 100*bpcer, scores[k], k, len(scores))
	}
	below := 0
	for _, s := range scores {
		if s < 0.5 {
			below++
		}
	}
	t.Logf("at p_real 0.5 (the authors' argmax): BPCER %.2f %%", 100*float64(below)/float64(len(scores)))
}
