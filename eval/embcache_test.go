package eval

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/facegate/facegate/infer/manifest"
)

// cacheFake embeds every image as one vector that says whether flip was
// on, and counts the images it was asked for.
type cacheFake struct {
	flip  bool
	calls int
}

func (f *cacheFake) Embed(_ context.Context, _ string, images []string, _ func(int)) (map[string]Embedding, error) {
	out := map[string]Embedding{}
	for _, im := range images {
		f.calls++
		v := []float32{1, 0}
		if f.flip {
			v = []float32{0, 1}
		}
		out[im] = Embedding{Vector: v}
	}
	return out, nil
}

func (f *cacheFake) Manifest() *manifest.Manifest {
	return &manifest.Manifest{Name: "fake", Version: "1.0.0"}
}
func (f *cacheFake) Detector() string { return "det" }
func (f *cacheFake) Flip() bool       { return f.flip }

// TestCachedEmbedFlip: the flip setting is part of the cache's key, so a
// flip run never reads plain embeddings (or the reverse), and the file
// names keep the two apart.
func TestCachedEmbedFlip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	images := []string{"a/1.jpg", "b/1.jpg"}
	if a, b := EmbCacheName("m", "d", false), EmbCacheName("m", "d", true); a != "emb-m-d.gob" || b != "emb-m-d-flip.gob" {
		t.Fatalf("cache names %q, %q", a, b)
	}
	path := filepath.Join(dir, "one.gob")
	plain := &cacheFake{}
	if _, err := CachedEmbed(ctx, plain, "root", images, path, nil); err != nil {
		t.Fatal(err)
	}
	again := &cacheFake{}
	res, err := CachedEmbed(ctx, again, "root", images, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.calls != 0 || res["a/1.jpg"].Vector[0] != 1 {
		t.Fatalf("plain run after plain run embedded %d images (want 0 from the cache), got %v", again.calls, res["a/1.jpg"].Vector)
	}
	flip := &cacheFake{flip: true}
	res, err = CachedEmbed(ctx, flip, "root", images, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if flip.calls != len(images) || res["b/1.jpg"].Vector[1] != 1 {
		t.Fatalf("flip run read the plain cache: embedded %d of %d, got %v", flip.calls, len(images), res["b/1.jpg"].Vector)
	}
	flip2 := &cacheFake{flip: true}
	if _, err := CachedEmbed(ctx, flip2, "root", images, path, nil); err != nil || flip2.calls != 0 {
		t.Fatalf("flip run after flip run embedded %d images, err %v", flip2.calls, err)
	}
}
