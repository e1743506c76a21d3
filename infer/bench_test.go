package infer_test

import (
	"image"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/align"
	"github.com/facegate/facegate/infer/imageio"
	"github.com/facegate/facegate/infer/quality"
)

// Benchmarks of the inference path (`make bench`; `facegate bench` measures
// the same with Python TensorFlow beside it). Models come from
// FACEGATE_MODELS_DIR; a missing model skips outside CI.

// benchOptions are the session settings `facegate bench` uses by default:
// one intra-op thread per core, one inter-op thread.
func benchOptions() infer.Options {
	return infer.Options{IntraOpThreads: runtime.NumCPU(), InterOpThreads: 1, CPUOnly: true}
}

func loadBench(b *testing.B, name string) *infer.Model {
	b.Helper()
	m, err := infer.Load(infer.TestModelDir(b, name), benchOptions())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

// BenchmarkEmbed times Embedder.EmbedChips on random chips per model and
// batch size; faces/s is reported as a metric.
func BenchmarkEmbed(b *testing.B) {
	for _, name := range []string{"dlib-resnet-v1", "vggface2-resnet50"} {
		b.Run(name, func(b *testing.B) {
			e, err := infer.NewEmbedder(loadBench(b, name))
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			chips := make([]float32, 16*e.ChipLen())
			for i := range chips {
				chips[i] = 255 * rng.Float32()
			}
			for _, n := range []int{1, 4, 16} {
				b.Run("batch="+strconv.Itoa(n), func(b *testing.B) {
					if _, err := e.EmbedChips(chips, n); err != nil { // warm-up
						b.Fatal(err)
					}
					b.SetBytes(int64(n * e.ChipLen() * 4))
					for b.Loop() {
						emb, err := e.EmbedChips(chips, n)
						if err != nil {
							b.Fatal(err)
						}
						if len(emb) != n {
							b.Fatalf("%d embeddings for %d chips", len(emb), n)
						}
					}
					b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "faces/s")
				})
			}
		})
	}
}

// benchImage is an LFW photo from the shared data (250x250, one face).
func benchImage(b *testing.B) *imageio.RGB {
	b.Helper()
	path := filepath.Join(infer.TestDataDir(b), "faces", "lfw__Abel_Pacheco", "001.jpg")
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	img, _, err := imageio.DecodeBytes(data, imageio.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	return img
}

// BenchmarkDetect times Detector.Detect (letterbox, model, decode, NMS) on
// one LFW photo.
func BenchmarkDetect(b *testing.B) {
	for _, name := range []string{"blazeface-short", "blazeface-full"} {
		b.Run(name, func(b *testing.B) {
			img := benchImage(b)
			d, err := infer.NewDetector(loadBench(b, name), infer.DetectorConfig{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := d.Detect(img); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				faces, err := d.Detect(img)
				if err != nil {
					b.Fatal(err)
				}
				if len(faces) == 0 {
					b.Fatal("no face found")
				}
			}
		})
	}
}

// BenchmarkAlign times the similarity estimate and bilinear warp of one
// face into a chip, for each embedder's chip size.
func BenchmarkAlign(b *testing.B) {
	for _, name := range []string{"dlib-resnet-v1", "vggface2-resnet50"} {
		b.Run(name, func(b *testing.B) {
			img := benchImage(b)
			d, err := infer.NewDetector(loadBench(b, "blazeface-short"), infer.DetectorConfig{})
			if err != nil {
				b.Fatal(err)
			}
			faces, err := d.Detect(img)
			if err != nil || len(faces) == 0 {
				b.Fatalf("detect: %d faces, %v", len(faces), err)
			}
			e, err := infer.NewEmbedder(loadBench(b, name))
			if err != nil {
				b.Fatal(err)
			}
			kps := make([]align.Point, len(faces[0].Keypoints))
			for i, p := range faces[0].Keypoints {
				kps[i] = align.Point{p.X, p.Y}
			}
			chip := make([]float32, e.ChipLen())
			for b.Loop() {
				if _, err := e.Align(img, kps, d.KeypointNames(), chip); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchFrame is the 1080p photo of the resolution ladder (one face, about
// a third of the frame high) as a w×h camera frame: centre-cropped to the
// frame's aspect and scaled.
func benchFrame(b *testing.B, w, h int) *imageio.RGB {
	b.Helper()
	data, err := os.ReadFile(filepath.Join(infer.TestDataDir(b), "resolution_ladder", "frec_obama-1080p.jpg"))
	if err != nil {
		b.Fatal(err)
	}
	img, _, err := imageio.DecodeBytes(data, imageio.Limits{})
	if err != nil {
		b.Fatal(err)
	}
	cw := min(img.W, img.H*w/h)
	ch := cw * h / w
	x0, y0 := (img.W-cw)/2, (img.H-ch)/2
	frame, err := imageio.Resize(img.Crop(image.Rect(x0, y0, x0+cw, y0+ch)), w, h)
	if err != nil {
		b.Fatal(err)
	}
	return frame
}

// analyse is the daemon's per-frame step (daemon.Engine.analyseFrame):
// detect, take the largest face, assess it and embed it when it passes. It
// returns the number of faces and whether one was embedded.
func analyse(p *infer.Pipeline, img *imageio.RGB, th quality.Thresholds) (int, bool, error) {
	faces, err := p.Detect(img)
	if err != nil {
		return 0, false, err
	}
	var primary *infer.Face
	for i := range faces {
		if primary == nil || faces[i].Box.Area() > primary.Box.Area() {
			primary = &faces[i]
		}
	}
	if primary == nil {
		return 0, false, nil
	}
	q, err := p.AssessEmbed(img, primary, th)
	if err != nil {
		return 0, false, err
	}
	return len(faces), q.OK && primary.Embedding != nil, nil
}

// BenchmarkFrame times the daemon's per-frame path (analyse) with its
// default models and settings on camera frames: the ladder photo at 640x480
// and 1280x720 (one face, assessed and embedded) and an empty grey frame
// (no face: the detector runs twice, the second time on the padded frame).
func BenchmarkFrame(b *testing.B) {
	det, err := infer.NewDetector(loadBench(b, "blazeface-short"), infer.DetectorConfig{})
	if err != nil {
		b.Fatal(err)
	}
	emb, err := infer.NewEmbedder(loadBench(b, "dlib-resnet-v1"))
	if err != nil {
		b.Fatal(err)
	}
	p := &infer.Pipeline{Det: det, Emb: emb, PadRetry: 0.25}
	th := quality.DefaultThresholds()
	empty := imageio.NewRGB(640, 480)
	for i := range empty.Pix {
		empty.Pix[i] = 128
	}
	for _, c := range []struct {
		name  string
		frame func(*testing.B) *imageio.RGB
		face  bool
	}{
		{"640x480", func(b *testing.B) *imageio.RGB { return benchFrame(b, 640, 480) }, true},
		{"1280x720", func(b *testing.B) *imageio.RGB { return benchFrame(b, 1280, 720) }, true},
		{"640x480-empty", func(*testing.B) *imageio.RGB { return empty }, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			img := c.frame(b)
			check := func() {
				n, embedded, err := analyse(p, img, th)
				if err != nil {
					b.Fatal(err)
				}
				if embedded != c.face || (n > 0) != c.face {
					b.Fatalf("%d faces, embedded %v; want a face: %v", n, embedded, c.face)
				}
			}
			check() // warm-up
			for b.Loop() {
				check()
			}
		})
	}
}

// perFrameModels are the models the daemon runs per frame (issue 17).
var perFrameModels = []string{"blazeface-short", "dlib-resnet-v1", "sface-2021dec", "minifasnet-v2", "minifasnet-v1se"}

// BenchmarkRunFloat32 times one Model.RunFloat32 call of each per-frame
// model's input signature (what `facegate bench -python` times on the Go
// side) at batch 1 and 16, with input tensors kept between calls (the
// default) and made fresh on every call (Options.FreshInputTensors, the
// path before issue 17), side by side in one process.
func BenchmarkRunFloat32(b *testing.B) {
	for _, name := range perFrameModels {
		dir := infer.TestModelDir(b, name)
		b.Run(name, func(b *testing.B) {
			models := map[string]*infer.Model{}
			for _, mode := range []string{"reused", "fresh"} {
				opts := benchOptions()
				opts.FreshInputTensors = mode == "fresh"
				m, err := infer.Load(dir, opts)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { m.Close() })
				models[mode] = m
			}
			in := models["reused"].Manifest().Input
			per := in.Height * in.Width * in.Channels
			rng := rand.New(rand.NewPCG(1, 2))
			data := make([]float32, 16*per)
			for i := range data {
				data[i] = 255 * rng.Float32()
			}
			for _, n := range []int{1, 16} {
				input := map[string]infer.Float32Batch{in.Tensor: {
					Shape: []int64{int64(n), int64(in.Height), int64(in.Width), int64(in.Channels)}, Data: data[:n*per]}}
				for _, mode := range []string{"reused", "fresh"} {
					m := models[mode]
					b.Run("batch="+strconv.Itoa(n)+"/"+mode, func(b *testing.B) {
						for range 2 { // warm-up
							if _, err := m.RunFloat32(in.Signature, input); err != nil {
								b.Fatal(err)
							}
						}
						for b.Loop() {
							out, err := m.RunFloat32(in.Signature, input)
							if err != nil {
								b.Fatal(err)
							}
							if len(out) == 0 {
								b.Fatal("no outputs")
							}
						}
					})
				}
			}
		})
	}
}
