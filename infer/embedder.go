package infer

import (
	"errors"
	"fmt"
	"sync"

	"github.com/facegate/facegate/infer/align"
	"github.com/facegate/facegate/infer/imageio"
	"github.com/facegate/facegate/infer/manifest"
)

// ErrNotEmbedder is returned when a model does not compute face embeddings.
var ErrNotEmbedder = errors.New("not an embedding model")

// Embedder computes L2-normalised face embeddings from aligned chips. It is
// safe for concurrent use: the pipeline borrows chip buffers from its pool.
type Embedder struct {
	model *Model
	tmpl  align.Template
	size  int
	dim   int
	sig   string
	in    string
	flip  bool      // flip test-time augmentation (flip.go)
	bufs  sync.Pool // of *chipBuf
}

// chipBuf is pooled scratch for aligning faces: chips in the model's input
// layout and an 8-bit copy of one for the quality checks.
type chipBuf struct {
	chips []float32
	rgb   imageio.RGB
}

// getChips returns scratch for n chips; give it back with putChips once
// nothing refers to its memory.
func (e *Embedder) getChips(n int) *chipBuf {
	b, _ := e.bufs.Get().(*chipBuf)
	if b == nil {
		b = new(chipBuf)
	}
	if cap(b.chips) < n*e.ChipLen() {
		b.chips = make([]float32, n*e.ChipLen())
	}
	b.chips = b.chips[:n*e.ChipLen()]
	return b
}

func (e *Embedder) putChips(b *chipBuf) { e.bufs.Put(b) }

// chipRGB rounds the first chip of b to 8 bits (as align.CropRGB does) into
// b's image.
func (e *Embedder) chipRGB(b *chipBuf) *imageio.RGB {
	if len(b.rgb.Pix) != e.ChipLen() {
		b.rgb = *imageio.NewRGB(e.size, e.size)
	}
	align.Quantize(b.rgb.Pix, b.chips[:e.ChipLen()])
	return &b.rgb
}

// NewEmbedder wraps a loaded embedder or Siamese model.
func NewEmbedder(m *Model) (*Embedder, error) {
	man := m.Manifest()
	if man.Task != manifest.TaskEmbedder && man.Task != manifest.TaskSiamese {
		return nil, fmt.Errorf("%w: %s is a %s", ErrNotEmbedder, man.Name, man.Task)
	}
	tmpl, err := align.TemplateFrom(man.Alignment)
	if err != nil {
		return nil, fmt.Errorf("embedder %s: %w", man.Name, err)
	}
	if tmpl.Size != man.Input.Width || tmpl.Size != man.Input.Height {
		return nil, fmt.Errorf("embedder %s: alignment size %d but input %dx%d", man.Name, tmpl.Size, man.Input.Width, man.Input.Height)
	}
	sig := man.Signatures[man.Input.Signature]
	if _, ok := sig.Outputs["embeddings"]; !ok {
		return nil, fmt.Errorf("%w: %s signature %q has no embeddings output", ErrNotEmbedder, man.Name, man.Input.Signature)
	}
	return &Embedder{model: m, tmpl: tmpl, size: tmpl.Size, dim: man.EmbeddingDim, sig: man.Input.Signature, in: man.Input.Tensor}, nil
}

// Model is the embedder's model.
func (e *Embedder) Model() *Model { return e.model }

// Template is the alignment template chips are cut with.
func (e *Embedder) Template() align.Template { return e.tmpl }

// Size is the side of the square chip.
func (e *Embedder) Size() int { return e.size }

// Dim is the embedding dimension.
func (e *Embedder) Dim() int { return e.dim }

// ChipLen is the number of float32 values in one chip.
func (e *Embedder) ChipLen() int { return 3 * e.size * e.size }

// Align cuts the chip of one face into dst[:ChipLen()] from the detector's
// keypoints (with their names).
func (e *Embedder) Align(img *imageio.RGB, keypoints []align.Point, names []string, dst []float32) (align.Similarity, error) {
	pts, err := e.tmpl.Select(keypoints, names)
	if err != nil {
		return align.Similarity{}, err
	}
	return align.Crop(img, pts, e.tmpl, dst)
}

// EmbedChips embeds n chips laid out one after another in chips
// ([n,Size,Size,3] float32 RGB 0..255) and returns one embedding per chip.
// With flip on (SetFlip) each embedding is that of the chip and its mirror.
func (e *Embedder) EmbedChips(chips []float32, n int) ([][]float32, error) {
	if n == 0 {
		return nil, nil
	}
	if len(chips) < n*e.ChipLen() {
		return nil, fmt.Errorf("embed: %d values for %d chips of %d", len(chips), n, e.ChipLen())
	}
	if e.flip {
		return e.embedFlipped(chips, n)
	}
	return e.embedRows(chips, n)
}

// embedRows runs the model on n chips in one batch.
func (e *Embedder) embedRows(chips []float32, n int) ([][]float32, error) {
	out, err := e.model.runFloat32(e.sig, map[string]Float32Batch{
		e.in: {Shape: []int64{int64(n), int64(e.size), int64(e.size), 3}, Data: chips[:n*e.ChipLen()]},
	}, []string{"embeddings"}, nil)
	if err != nil {
		return nil, fmt.Errorf("embed: %w", err)
	}
	emb := out[0]
	if emb.Rows() != n || emb.RowLen() != e.dim {
		return nil, fmt.Errorf("embed: model returned shape %v, want [%d %d]", emb.Shape, n, e.dim)
	}
	res := make([][]float32, n)
	for i := range res {
		res[i] = emb.Row(i)
	}
	return res, nil
}
