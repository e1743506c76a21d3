package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math"
	"os"
	"path/filepath"

	"golang.org/x/image/draw"
	"golang.org/x/image/math/f64"
)

// The clip: what scripts/demo.sh used to ask ffmpeg for.
const (
	Width  = 640
	Height = 480
	FPS    = 10
	// CupFrames of the cup (4 s), then FaceFrames of the astronaut (8 s).
	CupFrames  = 4 * FPS
	FaceFrames = 8 * FPS
	// The face photo is scaled to a Width-wide square whose rows from
	// CropTop are kept (ffmpeg's crop=640:480:0:40).
	CropTop = 40
	// The zoom grows by ZoomStep a frame from 1, up to MaxZoom.
	ZoomStep = 0.004
	MaxZoom  = 1.4
	// Quality of every JPEG written.
	Quality = 80
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "democlip:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("democlip", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cup := fs.String("cup", "testdata/coffee.jpg", "photo shown first")
	face := fs.String("face", "testdata/astronaut.jpg", "photo of the person, shown with a slow zoom")
	clip := fs.String("clip", "", "MJPEG clip to write (required)")
	enroll := fs.String("enroll", "", "mirrored copy of -face to write, for enrollment (optional)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *clip == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("usage: democlip -clip OUT.mjpeg [-enroll OUT.jpg] [-cup IMG] [-face IMG]")
	}
	cupImg, err := readJPEG(*cup)
	if err != nil {
		return err
	}
	faceImg, err := readJPEG(*face)
	if err != nil {
		return err
	}
	if err := writeAtomic(*clip, func(w io.Writer) error { return writeClip(w, cupImg, faceImg) }); err != nil {
		return err
	}
	if *enroll != "" {
		return writeAtomic(*enroll, func(w io.Writer) error {
			return jpeg.Encode(w, mirror(faceImg), &jpeg.Options{Quality: Quality})
		})
	}
	return nil
}

func readJPEG(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read photo: %w", err)
	}
	defer f.Close()
	img, err := jpeg.Decode(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return img, nil
}

// writeAtomic writes path through a temporary file, so that an interrupted
// run never leaves a half clip for the next one to trust.
func writeAtomic(path string, write func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".democlip-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<20)
	err = write(w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeClip writes the frames as back-to-back JPEGs (the MJPEG stream that
// capture/file reads): the cup stretched to the frame, then the face.
func writeClip(w io.Writer, cup, face image.Image) error {
	frame := image.NewRGBA(image.Rect(0, 0, Width, Height))
	draw.CatmullRom.Scale(frame, frame.Bounds(), cup, cup.Bounds(), draw.Src, nil)
	for i := range CupFrames {
		if err := jpeg.Encode(w, frame, &jpeg.Options{Quality: Quality}); err != nil {
			return fmt.Errorf("frame %d: %w", i, err)
		}
	}
	for i := range FaceFrames {
		drawFace(frame, face, Zoom(i))
		if err := jpeg.Encode(w, frame, &jpeg.Options{Quality: Quality}); err != nil {
			return fmt.Errorf("frame %d: %w", CupFrames+i, err)
		}
	}
	return nil
}

// Zoom is the zoom of the face's frame i (0-based): 1.004, 1.008, ...
// (ffmpeg's zoompan z='min(zoom+0.004,1.4)').
func Zoom(i int) float64 {
	return math.Min(1+ZoomStep*float64(i+1), MaxZoom)
}

// drawFace draws the face photo into dst as the old ffmpeg filter chain
// did, in one resampling: scaled to a Width-wide square, Height rows kept
// from CropTop, then zoomed by z about the point at half the width and a
// third of the height, which stays fixed.
func drawFace(dst *image.RGBA, face image.Image, z float64) {
	b := face.Bounds()
	sx := float64(Width) / float64(b.Dx())
	sy := float64(Width) / float64(b.Dy())
	top := float64(CropTop)
	// The zoomed window's top-left corner in the cropped 640x480 image.
	x0 := float64(Width)/2 - float64(Width)/z/2
	y0 := float64(Height)/3 - float64(Height)/z/3
	// Source pixel (u, v) lands at ((u*sx - x0)*z, (v*sy - top - y0)*z).
	s2d := f64.Aff3{
		sx * z, 0, -(float64(b.Min.X)*sx + x0) * z,
		0, sy * z, -(float64(b.Min.Y)*sy + top + y0) * z,
	}
	draw.CatmullRom.Transform(dst, s2d, face, b, draw.Src, nil)
}

// mirror flips img left to right (ffmpeg's hflip).
func mirror(img image.Image) *image.RGBA {
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			out.Set(b.Max.X-1-(x-b.Min.X), y-b.Min.Y, img.At(x, y))
		}
	}
	return out
}
