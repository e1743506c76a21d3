package imagetest

import (
	"image"
	_ "image/jpeg"
	"os"
	"path/filepath"
	"testing"
)

func TestDecodeFile(t *testing.T) {
	path := filepath.Join("..", "..", "testdata", "coffee.jpg")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	img := DecodeFile(t, path)
	if img.W != cfg.Width || img.H != cfg.Height || len(img.Pix) != 3*cfg.Width*cfg.Height {
		t.Fatalf("decoded %dx%d (%d bytes), the file is %dx%d", img.W, img.H, len(img.Pix), cfg.Width, cfg.Height)
	}
}
