package door

import (
	"bufio"
	"bytes"
	"fmt"
	"image"
	"image/color"
	stddraw "image/draw"
	"image/jpeg"
	_ "image/png" // some sources are PNG
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"golang.org/x/image/draw"
)

// ClipConfig says how visits become frames.
type ClipConfig struct {
	Width, Height int     // frame size (640x480)
	FPS           float64 // the rate the daemon plays the clip at (FACEGATE_CAMERA_FPS)
	PhotoSeconds  float64 // each photo of a visit is shown this long
	GapSeconds    float64 // empty frames between visits (longer than FACEGATE_VISIT_GAP)
	LeadSeconds   float64 // empty frames before the first visit
	TailSeconds   float64 // empty frames after the last (the last visit's end is seen)
	// PhotoSide is the side in pixels the (square) photo is scaled to,
	// centred horizontally, letterboxed on the background: a 250x250 LFW
	// photo at 320 gives a face about 140 pixels wide, a person about a
	// metre from a 640x480 door camera.
	PhotoSide int
	// Jitter moves and scales the photo a little on every frame (at most
	// JitterPx pixels and JitterScale relative), as a person standing still
	// does, so that a photo's frames are not bit-identical.
	JitterPx    float64
	JitterScale float64
	Quality     int // JPEG quality
	Seed        uint64
}

// DefaultClipConfig is the scenario at fps.
func DefaultClipConfig(fps float64) ClipConfig {
	return ClipConfig{Width: 640, Height: 480, FPS: fps, PhotoSeconds: 0.4, GapSeconds: 1.8, LeadSeconds: 2, TailSeconds: 4,
		PhotoSide: 320, JitterPx: 5, JitterScale: 0.03, Quality: 85, Seed: 1}
}

func (c ClipConfig) frames(seconds float64) int {
	n := int(math.Round(seconds * c.FPS))
	if n < 1 {
		n = 1
	}
	return n
}

// Clip is what WriteClip wrote.
type Clip struct {
	Frames     uint64 // frames in the clip
	FaceFrames uint64 // frames showing a face
}

// WriteClip renders visits (photos under root) as an MJPEG stream on w
// (JPEG frames back to back, what capture/file plays) and fills in each
// visit's First and Last frame.
func WriteClip(w io.Writer, root string, visits []Visit, cfg ClipConfig) (Clip, error) {
	if cfg.FPS <= 0 || cfg.Width <= 0 || cfg.Height <= 0 || cfg.PhotoSide <= 0 || cfg.PhotoSide > cfg.Height {
		return Clip{}, fmt.Errorf("door clip: bad config %+v", cfg)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	bg := image.NewRGBA(image.Rect(0, 0, cfg.Width, cfg.Height))
	stddraw.Draw(bg, bg.Bounds(), &image.Uniform{color.RGBA{88, 92, 96, 255}}, image.Point{}, stddraw.Src)
	var empty bytes.Buffer
	if err := jpeg.Encode(&empty, bg, &jpeg.Options{Quality: cfg.Quality}); err != nil {
		return Clip{}, fmt.Errorf("door clip: %w", err)
	}
	var clip Clip
	writeEmpty := func(n int) error {
		for range n {
			if _, err := bw.Write(empty.Bytes()); err != nil {
				return fmt.Errorf("door clip: %w", err)
			}
			clip.Frames++
		}
		return nil
	}
	if err := writeEmpty(cfg.frames(cfg.LeadSeconds)); err != nil {
		return clip, err
	}
	r := rand.New(rand.NewPCG(cfg.Seed, 3))
	frame := image.NewRGBA(bg.Bounds())
	var buf bytes.Buffer
	for i := range visits {
		v := &visits[i]
		if i > 0 {
			if err := writeEmpty(cfg.frames(cfg.GapSeconds)); err != nil {
				return clip, err
			}
		}
		v.First = clip.Frames + 1
		for _, rel := range v.Photos {
			img, err := readImage(filepath.Join(root, rel))
			if err != nil {
				return clip, err
			}
			for range cfg.frames(cfg.PhotoSeconds) {
				copy(frame.Pix, bg.Pix)
				s := float64(cfg.PhotoSide) * (1 + cfg.JitterScale*(2*r.Float64()-1))
				cx := float64(cfg.Width)/2 + cfg.JitterPx*(2*r.Float64()-1)
				cy := float64(cfg.Height)/2 + cfg.JitterPx*(2*r.Float64()-1)
				b := img.Bounds()
				sw, sh := s, s*float64(b.Dy())/float64(b.Dx())
				if sh > float64(cfg.Height) {
					sw, sh = sw*float64(cfg.Height)/sh, float64(cfg.Height)
				}
				dst := image.Rect(int(cx-sw/2), int(cy-sh/2), int(cx+sw/2), int(cy+sh/2)).Intersect(frame.Bounds())
				draw.BiLinear.Scale(frame, dst, img, b, draw.Src, nil)
				buf.Reset()
				if err := jpeg.Encode(&buf, frame, &jpeg.Options{Quality: cfg.Quality}); err != nil {
					return clip, fmt.Errorf("door clip: %w", err)
				}
				if _, err := bw.Write(buf.Bytes()); err != nil {
					return clip, fmt.Errorf("door clip: %w", err)
				}
				clip.Frames++
				clip.FaceFrames++
			}
		}
		v.Last = clip.Frames
	}
	if err := writeEmpty(cfg.frames(cfg.TailSeconds)); err != nil {
		return clip, err
	}
	if err := bw.Flush(); err != nil {
		return clip, fmt.Errorf("door clip: %w", err)
	}
	return clip, nil
}

func readImage(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("door clip: %w", err)
	}
	defer f.Close()
	img, _, err := image.Decode(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("door clip: decode %s: %w", path, err)
	}
	return img, nil
}
