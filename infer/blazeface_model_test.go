package infer_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/detect"
)

// blazefaceModels are the detectors models/blazeface.py exports, with their
// input size and anchor count.
var blazefaceModels = []struct {
	name    string
	size    int
	anchors int
}{
	{"blazeface-short", 128, 896},
	{"blazeface-full", 192, 2304},
}

// blazefaceTol bounds |SavedModel - tfjs| as 1e-4 * max(1, |tfjs|): raw
// logits reach -237, where float32 rounding alone (TF or tfjs) is ~2e-4.
const blazefaceTol = 1e-4

// blazefaceRef is what models/blazeface.py reference wrote (mk/blazeface.mk,
// `make test`): the inputs and the ORIGINAL tfjs model's raw output.
type blazefaceRef struct {
	Name    string   `json:"name"`
	Size    int      `json:"size"`
	Batch   int      `json:"batch"`
	Anchors int      `json:"anchors"`
	Inputs  []string `json:"inputs"`
	TFJS    struct {
		Output  string `json:"output"`
		Shape   []int  `json:"shape"`
		Backend string `json:"backend"`
		Core    string `json:"tfjs_core"`
	} `json:"tfjs"`
	input  []float32 // [N,S,S,3] RGB 0..255
	output []float32 // [N,A,17]: score logit, then 16 box regressors
}

func readFloat32s(path string, n int) ([]float32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) != 4*n {
		return nil, fmt.Errorf("%s: %d bytes, want %d float32", path, len(b), n)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out, nil
}

// readBlazefaceRef finds the reference in $FACEGATE_BLAZEFACE_REF or
// <build>/blazeface-ref beside <build>/models.
func readBlazefaceRef(t *testing.T, modelDir, name string) *blazefaceRef {
	t.Helper()
	root := os.Getenv("FACEGATE_BLAZEFACE_REF")
	if root == "" {
		root = filepath.Join(filepath.Dir(filepath.Dir(modelDir)), "blazeface-ref")
	}
	dir := filepath.Join(root, name)
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("tfjs reference missing under CI=true (run `make test`): %v", err)
		}
		t.Skipf("tfjs reference not made (run `make blazeface-ref`): %v", err)
	}
	var ref blazefaceRef
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatalf("decode %s/meta.json: %v", dir, err)
	}
	if ref.input, err = readFloat32s(filepath.Join(dir, "input.f32"), ref.Batch*ref.Size*ref.Size*3); err != nil {
		t.Fatalf("read reference input: %v", err)
	}
	if ref.output, err = readFloat32s(filepath.Join(dir, "tfjs_output.f32"), ref.Batch*ref.Anchors*17); err != nil {
		t.Fatalf("read tfjs output: %v", err)
	}
	return &ref
}

func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("size of %s: %v", dir, err)
	}
	return n
}

// TestBlazeFaceMatchesTFJS loads each converted detector through infer.Load
// and compares its raw outputs with the original tfjs model's, then decodes
// both with infer/detect from the manifest alone and checks they agree.
func TestBlazeFaceMatchesTFJS(t *testing.T) {
	for _, bm := range blazefaceModels {
		t.Run(bm.name, func(t *testing.T) {
			dir := infer.TestModelDir(t, bm.name)
			ref := readBlazefaceRef(t, dir, bm.name)
			m, err := infer.Load(dir, infer.Options{})
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			defer m.Close()
			t.Logf("%s: SavedModel %.2f MiB, loaded in %v", bm.name, float64(dirSize(t, dir))/(1<<20), m.LoadTime())

			man := m.Manifest()
			if man.Task != "detector" || man.Detector == nil {
				t.Fatalf("manifest task %q, detector %v", man.Task, man.Detector)
			}
			if man.Input.Width != bm.size || man.Detector.Anchors.Count != bm.anchors || ref.Size != bm.size || ref.Anchors != bm.anchors {
				t.Fatalf("size/anchors: manifest %d/%d, reference %d/%d, want %d/%d",
					man.Input.Width, man.Detector.Anchors.Count, ref.Size, ref.Anchors, bm.size, bm.anchors)
			}
			if ref.TFJS.Backend != "cpu" || ref.TFJS.Core != "4.22.0" {
				t.Fatalf("reference made with tfjs %s on %s, want 4.22.0 on cpu", ref.TFJS.Core, ref.TFJS.Backend)
			}

			s := int64(bm.size)
			out, err := m.RunFloat32(man.Input.Signature, map[string]infer.Float32Batch{
				man.Input.Tensor: {Shape: []int64{int64(ref.Batch), s, s, 3}, Data: ref.input},
			}, man.Detector.BoxesOutput, man.Detector.ScoresOutput)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			boxes, scores := out[man.Detector.BoxesOutput], out[man.Detector.ScoresOutput]
			a := int64(bm.anchors)
			if fmt.Sprint(boxes.Shape) != fmt.Sprint([]int64{int64(ref.Batch), a, 16}) ||
				fmt.Sprint(scores.Shape) != fmt.Sprint([]int64{int64(ref.Batch), a, 1}) {
				t.Fatalf("output shapes boxes %v scores %v", boxes.Shape, scores.Shape)
			}

			var maxAbs, maxRel float64
			bad := 0
			for i := 0; i < ref.Batch*bm.anchors; i++ {
				row := ref.output[i*17 : (i+1)*17]
				for j, want := range row {
					var got float32
					if j == 0 {
						got = scores.Data[i]
					} else {
						got = boxes.Data[i*16+j-1]
					}
					d := math.Abs(float64(got) - float64(want))
					scale := math.Max(1, math.Abs(float64(want)))
					maxAbs = math.Max(maxAbs, d)
					maxRel = math.Max(maxRel, d/scale)
					if d > blazefaceTol*scale {
						if bad++; bad <= 5 {
							t.Errorf("image %d anchor %d value %d: got %g, tfjs %g", i/bm.anchors, i%bm.anchors, j, got, want)
						}
					}
				}
			}
			t.Logf("%s: max abs diff vs tfjs %.3g, max relative (|ref|>=1) %.3g over %d values", bm.name, maxAbs, maxRel, len(ref.output))
			if bad > 0 {
				t.Fatalf("%d values differ from tfjs by more than %g*max(1,|ref|)", bad, blazefaceTol)
			}

			// Decode both with the manifest's anchors: same faces, same places.
			dec, err := detect.NewDecoder(man, 0.5, 0.3)
			if err != nil {
				t.Fatalf("decoder from manifest: %v", err)
			}
			stride := dec.Stride()
			tfjsBoxes := make([]float32, bm.anchors*stride)
			tfjsScores := make([]float32, bm.anchors)
			for img := 0; img < ref.Batch; img++ {
				for k := 0; k < bm.anchors; k++ {
					row := ref.output[(img*bm.anchors+k)*17:]
					tfjsScores[k] = row[0]
					copy(tfjsBoxes[k*stride:(k+1)*stride], row[1:17])
				}
				got, err := dec.Decode(boxes.Data[img*bm.anchors*16:(img+1)*bm.anchors*16], scores.Data[img*bm.anchors:(img+1)*bm.anchors])
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				want, err := dec.Decode(tfjsBoxes, tfjsScores)
				if err != nil {
					t.Fatalf("decode tfjs: %v", err)
				}
				if len(got) != len(want) {
					t.Fatalf("%s: %d faces, tfjs %d", ref.Inputs[img], len(got), len(want))
				}
				for f := range got {
					if d := math.Abs(got[f].Box.X0-want[f].Box.X0) + math.Abs(got[f].Box.Y1-want[f].Box.Y1); d > 1e-2 {
						t.Errorf("%s face %d: box %+v, tfjs %+v", ref.Inputs[img], f, got[f].Box, want[f].Box)
					}
				}
				// LFW photos: one centred face; keypoint 0 (right_eye, the
				// subject's right) is on the image's left.
				if strings.Contains(ref.Inputs[img], "lfw__") {
					if len(got) == 0 {
						t.Fatalf("%s: no face found", ref.Inputs[img])
					}
					f := got[0]
					cx := (f.Box.X0 + f.Box.X1) / 2 / float64(bm.size)
					if f.Score < 0.6 || math.Abs(cx-0.5) > 0.1 || f.Keypoints[0].X >= f.Keypoints[1].X {
						t.Errorf("%s: face %+v", ref.Inputs[img], f)
					}
				}
			}
		})
	}
}

// BenchmarkBlazeFaceDetect times one frame (batch 1) through each detector.
func BenchmarkBlazeFaceDetect(b *testing.B) {
	for _, bm := range blazefaceModels {
		b.Run(bm.name, func(b *testing.B) {
			dir := infer.TestModelDir(b, bm.name)
			m, err := infer.Load(dir, infer.Options{})
			if err != nil {
				b.Fatalf("load: %v", err)
			}
			defer m.Close()
			s := int64(bm.size)
			in := infer.Float32Batch{Shape: []int64{1, s, s, 3}, Data: make([]float32, s*s*3)}
			for i := range in.Data {
				in.Data[i] = float32(i % 251)
			}
			feeds := map[string]infer.Float32Batch{"images": in}
			if _, err := m.RunFloat32("detect", feeds); err != nil { // warm-up: Grappler runs on the first call
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if _, err := m.RunFloat32("detect", feeds); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
