package main

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/jpeg"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/facegate/facegate/capture"
	"github.com/facegate/facegate/capture/file"
)

const (
	cupPath  = "../../testdata/coffee.jpg"
	facePath = "../../testdata/astronaut.jpg"
)

// TestClip makes the demo's clip and enrollment photo from the real photos
// and reads the clip back with the daemon's own MJPEG source.
func TestClip(t *testing.T) {
	dir := t.TempDir()
	clip, enroll := filepath.Join(dir, "demo", "clip.mjpeg"), filepath.Join(dir, "demo", "enroll.jpg")
	var stderr bytes.Buffer
	if err := run([]string{"-cup", cupPath, "-face", facePath, "-clip", clip, "-enroll", enroll}, &stderr); err != nil {
		t.Fatalf("democlip: %v\n%s", err, stderr.String())
	}
	frames := readClip(t, clip)
	if len(frames) != CupFrames+FaceFrames {
		t.Fatalf("%d frames, want %d (4 s of cup and 8 s of face at %d fps)", len(frames), CupFrames+FaceFrames, FPS)
	}
	for i, f := range frames {
		if b := f.Bounds(); b.Dx() != Width || b.Dy() != Height {
			t.Fatalf("frame %d is %v, want %dx%d", i, b, Width, Height)
		}
	}
	cup, face := decodeFile(t, cupPath), decodeFile(t, facePath)

	// The cup, stretched to the frame, for the first 4 s.
	if d := meanDiff(frames[0], func(x, y int) (r, g, b float64) {
		return sample(cup, (float64(x)+0.5)*float64(cup.Bounds().Dx())/Width, (float64(y)+0.5)*float64(cup.Bounds().Dy())/Height)
	}); d > 12 {
		t.Errorf("frame 0 differs from the stretched cup by %.1f levels on average", d)
	}
	if d := diff(frames[0], frames[CupFrames-1]); d > 1 {
		t.Errorf("the cup frames differ from each other by %.1f levels", d)
	}
	// Then the face: the photo scaled to 640x640, rows 40..519, zoomed by
	// Zoom(i) about (320, 160): an independent nearest-sample reference.
	for _, i := range []int{0, FaceFrames / 2, FaceFrames - 1} {
		z := Zoom(i)
		s := float64(face.Bounds().Dx()) / Width
		d := meanDiff(frames[CupFrames+i], func(x, y int) (r, g, b float64) {
			u := Width/2 + (float64(x)+0.5-Width/2)/z
			v := Height/3 + (float64(y)+0.5-Height/3)/z + CropTop
			return sample(face, u*s, v*s)
		})
		if d > 12 {
			t.Errorf("face frame %d (zoom %.3f) differs from the reference by %.1f levels on average", i, z, d)
		}
	}
	if z := Zoom(FaceFrames - 1); z < 1.3 || z > MaxZoom {
		t.Errorf("last zoom %.3f, want a slow zoom to about 1.3", z)
	}
	if d := diff(frames[CupFrames], frames[len(frames)-1]); d < 10 {
		t.Errorf("the first and last face frames differ by only %.1f levels: no zoom", d)
	}

	// The enrollment photo is the face mirrored left to right.
	mirrored := decodeFile(t, enroll)
	if mirrored.Bounds().Size() != face.Bounds().Size() {
		t.Fatalf("enrollment photo %v, face %v", mirrored.Bounds(), face.Bounds())
	}
	w := face.Bounds().Dx()
	if d := meanDiff(mirrored, func(x, y int) (r, g, b float64) { return sample(face, float64(w-x)-0.5, float64(y)+0.5) }); d > 6 {
		t.Errorf("enrollment photo differs from the mirrored face by %.1f levels", d)
	}
	if d := diff(mirrored, face); d < 10 {
		t.Errorf("enrollment photo is not mirrored (%.1f levels from the face)", d)
	}
}

func TestUsage(t *testing.T) {
	var stderr bytes.Buffer
	if err := run(nil, &stderr); err == nil {
		t.Fatal("no -clip: no error")
	}
	if err := run([]string{"-clip", filepath.Join(t.TempDir(), "c.mjpeg"), "-face", "missing.jpg"}, &stderr); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing photo: %v", err)
	}
}

// readClip decodes every frame through capture/file, as facegate run does.
func readClip(t *testing.T, path string) []image.Image {
	t.Helper()
	src, err := file.OpenMJPEG(path, file.Options{FPS: capture.FPSMax})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var frames []image.Image
	for {
		f, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return frames
		}
		if err != nil {
			t.Fatal(err)
		}
		img, err := jpeg.Decode(bytes.NewReader(f.Data))
		if err != nil {
			t.Fatalf("frame %d: %v", f.Seq, err)
		}
		frames = append(frames, img)
	}
}

func decodeFile(t *testing.T, path string) image.Image {
	t.Helper()
	img, err := readJPEG(path)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// sample is img's color at the point (x, y) in pixel units, nearest pixel,
// in 8-bit levels.
func sample(img image.Image, x, y float64) (r, g, b float64) {
	bb := img.Bounds()
	px := min(max(int(math.Floor(x)), 0), bb.Dx()-1) + bb.Min.X
	py := min(max(int(math.Floor(y)), 0), bb.Dy()-1) + bb.Min.Y
	cr, cg, cb, _ := img.At(px, py).RGBA()
	return float64(cr >> 8), float64(cg >> 8), float64(cb >> 8)
}

// meanDiff is the mean absolute difference, in levels per channel, between
// img and ref over img's pixels (every other one).
func meanDiff(img image.Image, ref func(x, y int) (r, g, b float64)) float64 {
	bb := img.Bounds()
	var sum float64
	n := 0
	for y := 0; y < bb.Dy(); y += 2 {
		for x := 0; x < bb.Dx(); x += 2 {
			r0, g0, b0 := sample(img, float64(x), float64(y))
			r1, g1, b1 := ref(x, y)
			sum += math.Abs(r0-r1) + math.Abs(g0-g1) + math.Abs(b0-b1)
			n += 3
		}
	}
	return sum / float64(n)
}

func diff(a, b image.Image) float64 {
	return meanDiff(a, func(x, y int) (r, g, bl float64) { return sample(b, float64(x), float64(y)) })
}
