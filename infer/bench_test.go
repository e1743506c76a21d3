package infer_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/align"
	"github.com/facegate/facegate/infer/imageio"
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
