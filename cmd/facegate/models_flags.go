package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/imageio"
)

// modelFlags selects the detector and embedder for the commands that run
// the face pipeline (eval, detect).
type modelFlags struct {
	dir, detector, embedder string
	threads, batch          int
	pad                     float64
	minScore                float64
}

func (m *modelFlags) register(fs *flag.FlagSet) {
	def := os.Getenv(infer.ModelsDirEnv)
	if def == "" {
		def = filepath.Join("build", "models")
	}
	fs.StringVar(&m.dir, "models", def, "folder of exported models")
	fs.StringVar(&m.detector, "detector", "blazeface-short", "detector model: a name under -models or a path")
	fs.StringVar(&m.embedder, "model", "dlib-resnet-v1", "embedding model: a name under -models or a path")
	fs.IntVar(&m.threads, "threads", 0, "TensorFlow intra-op threads (0 = one per core)")
	fs.IntVar(&m.batch, "batch", 16, "faces per embedding batch")
	fs.Float64Var(&m.pad, "pad", 0.25, "when no face is found, pad the image by this fraction of its size and detect again (0 = off)")
	fs.Float64Var(&m.minScore, "min-score", 0.5, "detector score threshold")
}

func (m *modelFlags) path(name string) string {
	if strings.ContainsRune(name, os.PathSeparator) {
		return name
	}
	return filepath.Join(m.dir, name)
}

// openDetector loads the detector only.
func (m *modelFlags) openDetector() (*infer.Pipeline, func(), error) {
	return infer.OpenPipeline(m.path(m.detector), "", m.options(), infer.DetectorConfig{MinScore: m.minScore}, m.pad)
}

// open loads both models; the returned function releases them.
func (m *modelFlags) open() (*infer.Pipeline, func(), error) {
	return infer.OpenPipeline(m.path(m.detector), m.path(m.embedder), m.options(), infer.DetectorConfig{MinScore: m.minScore}, m.pad)
}

func (m *modelFlags) options() infer.Options {
	return infer.Options{IntraOpThreads: m.threads, InterOpThreads: 1}
}

func decodeFile(path string) (*imageio.RGB, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, _, err := imageio.Decode(f, imageio.Limits{})
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return img, nil
}
