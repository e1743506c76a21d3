package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/facegate/facegate/eval"
	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/imageio"
	"github.com/facegate/facegate/infer/manifest"
)

// Embedder embeds images with an open infer.Pipeline, Batch faces per
// embedding call. It is not safe for concurrent use (neither is the
// pipeline).
type Embedder struct {
	p     *infer.Pipeline
	batch int
}

var _ eval.Embedder = (*Embedder)(nil)

// New returns an Embedder over p, which must have an embedding model.
// batch < 1 means one face per call.
func New(p *infer.Pipeline, batch int) *Embedder {
	return &Embedder{p: p, batch: max(batch, 1)}
}

// Manifest is the embedding model's manifest.
func (e *Embedder) Manifest() *manifest.Manifest { return e.p.Emb.Model().Manifest() }

// Detector names the detection model.
func (e *Embedder) Detector() string { return e.p.Det.Model().Manifest().Name }

// ModelDir is the embedding model's folder (where calibration writes).
func (e *Embedder) ModelDir() string { return e.p.Emb.Model().Dir() }

// Flip reports whether the embedder embeds with flip test-time
// augmentation (infer.Embedder.SetFlip); the embedding cache keys on it.
func (e *Embedder) Flip() bool { return e.p.Emb.Flip() }

// Embed runs every image through decode → detect → primary face → align →
// embed, batching the embedder across images. Images that fail keep their
// error (NoFace when no face was found); they are failures to acquire,
// never dropped. A model error stops the run.
func (e *Embedder) Embed(ctx context.Context, root string, images []string, progress func(int)) (map[string]eval.Embedding, error) {
	if progress == nil {
		progress = func(int) {}
	}
	p := e.p
	out := make(map[string]eval.Embedding, len(images))
	type pending struct {
		name string
		img  *imageio.RGB
		face *infer.Face
	}
	var queue []pending
	chipLen := p.Emb.ChipLen()
	flush := func() error {
		if len(queue) == 0 {
			return nil
		}
		// One batch: faces of different images, chips side by side.
		chips := make([]float32, len(queue)*chipLen)
		for i, q := range queue {
			kps := make([][2]float64, len(q.face.Keypoints))
			for k, pt := range q.face.Keypoints {
				kps[k] = [2]float64{pt.X, pt.Y}
			}
			if _, err := p.Emb.Align(q.img, kps, q.face.Names, chips[i*chipLen:(i+1)*chipLen]); err != nil {
				return fmt.Errorf("align %s: %w", q.name, err)
			}
		}
		embs, err := p.Emb.EmbedChips(chips, len(queue))
		if err != nil {
			return fmt.Errorf("embed %d faces: %w", len(queue), err)
		}
		for i, q := range queue {
			out[q.name] = eval.Embedding{Vector: embs[i], Padded: q.face.Padded}
		}
		progress(len(queue))
		queue = queue[:0]
		return nil
	}
	for _, name := range images {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		img, err := decodeFile(filepath.Join(root, name))
		if err != nil {
			out[name] = eval.Embedding{Err: err}
			progress(1)
			continue
		}
		faces, err := p.Detect(img)
		if err != nil {
			return nil, fmt.Errorf("detect %s: %w", name, err)
		}
		f, err := infer.Primary(faces, img.W, img.H)
		if err != nil {
			out[name] = eval.Embedding{Err: err, NoFace: errors.Is(err, infer.ErrNoFace)}
			progress(1)
			continue
		}
		queue = append(queue, pending{name: name, img: img, face: f})
		if len(queue) >= e.batch {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
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
