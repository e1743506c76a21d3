package eval

import (
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// embCache is the file an embedding cache keeps: one model and detector,
// with or without flip test-time augmentation, every image's embedding or
// why it has none. Files written before Flip existed read as Flip false,
// which they are.
type embCache struct {
	Model, Detector, Root string
	Flip                  bool
	Items                 map[string]cachedEmbedding
}

// flipper is an Embedder that can embed with flip test-time augmentation
// (eval/pipeline's, infer.Embedder.SetFlip).
type flipper interface{ Flip() bool }

// embedsFlipped reports whether e embeds with flip test-time augmentation.
func embedsFlipped(e Embedder) bool {
	f, ok := e.(flipper)
	return ok && f.Flip()
}

type cachedEmbedding struct {
	Vector         []float32
	Padded, NoFace bool
	Err            string
}

// CachedEmbed is Embed with a cache file: images already in path for the
// same model, detector, root and flip setting are read from it, the rest
// embedded and the file rewritten. A cache for another model, detector or
// flip setting is replaced (EmbCacheName keeps them in different files).
func CachedEmbed(ctx context.Context, e Embedder, root string, images []string, path string, progress io.Writer) (map[string]Embedding, error) {
	want := embCache{Model: ModelLabel(e.Manifest()), Detector: e.Detector(), Root: root, Flip: embedsFlipped(e), Items: map[string]cachedEmbedding{}}
	c, err := readEmbCache(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		slog.Warn("embedding cache unreadable, embedding again", "path", path, "err", err)
	case c.Model != want.Model || c.Detector != want.Detector || c.Root != want.Root || c.Flip != want.Flip:
		slog.Info("embedding cache is for other models, embedding again", "path", path, "cache", c.Model+"/"+c.Detector, "cache_flip", c.Flip, "want", want.Model+"/"+want.Detector, "want_flip", want.Flip)
	default:
		want.Items = c.Items
	}
	var missing []string
	for _, im := range images {
		if _, ok := want.Items[im]; !ok {
			missing = append(missing, im)
		}
	}
	if len(missing) > 0 {
		res, err := embedAll(ctx, e, root, missing, progress)
		if err != nil {
			return nil, err
		}
		for name, r := range res {
			ce := cachedEmbedding{Vector: r.Vector, Padded: r.Padded, NoFace: r.NoFace}
			if r.Err != nil {
				ce.Err = r.Err.Error()
			}
			want.Items[name] = ce
		}
		if err := writeEmbCache(path, &want); err != nil {
			return nil, err
		}
	}
	out := make(map[string]Embedding, len(images))
	for _, im := range images {
		ce := want.Items[im]
		r := Embedding{Vector: ce.Vector, Padded: ce.Padded, NoFace: ce.NoFace}
		if ce.Err != "" {
			r.Err = errors.New(ce.Err)
			r.Vector = nil
		}
		out[im] = r
	}
	return out, nil
}

// EmbCacheName is the file name of the embedding cache of a model and a
// detector (directory names): emb-MODEL-DETECTOR.gob, emb-MODEL-DETECTOR-flip.gob
// with flip test-time augmentation.
func EmbCacheName(model, detector string, flip bool) string {
	name := "emb-" + model + "-" + detector
	if flip {
		name += "-flip"
	}
	return name + ".gob"
}

func readEmbCache(path string) (*embCache, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var c embCache
	if err := gob.NewDecoder(f).Decode(&c); err != nil {
		return nil, fmt.Errorf("read embedding cache %s: %w", path, err)
	}
	return &c, nil
}

func writeEmbCache(path string, c *embCache) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("embedding cache: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("embedding cache: %w", err)
	}
	if err := gob.NewEncoder(f).Encode(c); err != nil {
		f.Close()
		return fmt.Errorf("write embedding cache %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write embedding cache %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("embedding cache: %w", err)
	}
	return nil
}

// FolderImages lists every regular file of root/<identity>/ whose identity
// starts with source ("" for all), sorted: "identity/file".
func FolderImages(root, source string) ([]string, error) {
	dirs, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var out []string
	for _, d := range dirs {
		if !d.IsDir() || !strings.HasPrefix(d.Name(), source) {
			continue
		}
		files, err := os.ReadDir(filepath.Join(root, d.Name()))
		if err != nil {
			return nil, fmt.Errorf("list images: %w", err)
		}
		for _, f := range files {
			if f.Type().IsRegular() {
				out = append(out, d.Name()+"/"+f.Name())
			}
		}
	}
	sort.Strings(out)
	return out, nil
}
