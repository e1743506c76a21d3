package imagetest

import (
	"os"
	"testing"

	"github.com/facegate/facegate/infer/imageio"
)

// DecodeFile decodes the image at path with imageio's default limits; the
// test fails when it cannot.
func DecodeFile(t testing.TB, path string) *imageio.RGB {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := imageio.Decode(f, imageio.Limits{})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}
