package file

import (
	"context"
	"fmt"
	"image"
	_ "image/gif" // registered decoders for image.Decode
	"image/png"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/facegate/facegate/capture"
)

// Options configures file sources.
type Options struct {
	// FPS paces frames: > 0 that rate, 0 the file's own rate (Dir and
	// MJPEG have none and use DefaultFPS), capture.FPSMax no pacing.
	FPS float64
	// Loop restarts at the end instead of returning io.EOF.
	Loop bool
	// Metrics receives FrameIn and Corrupt counts.
	Metrics *capture.Metrics
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

// DefaultFPS paces image directories and MJPEG files that carry no rate.
const DefaultFPS = 10

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

func (o Options) rate(native float64) float64 {
	switch {
	case o.FPS == capture.FPSMax:
		return 0
	case o.FPS > 0:
		return o.FPS
	case native > 0:
		return native
	}
	return DefaultFPS
}

// Dir plays a directory of .jpg/.jpeg/.png files in name order. JPEGs are
// delivered as FormatJPEG bytes (decoded by the same path as camera MJPEG);
// PNGs are decoded on read. Unreadable or corrupt files are skipped and
// counted.
type Dir struct {
	path  string
	files []string
	i     int
	seq   uint64
	opts  Options
	pace  *pacer
	good  int // frames delivered in this pass
}

// OpenDir lists path. It fails if the directory has no image files.
func OpenDir(path string, opts Options) (*Dir, error) {
	opts.defaults()
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("image directory: %w", err)
	}
	var files []string
	for _, e := range ents {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".jpg", ".jpeg", ".png":
			if !e.IsDir() {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("image directory %s: no .jpg, .jpeg or .png files", path)
	}
	return &Dir{path: path, files: files, opts: opts, pace: newPacer(opts.rate(0))}, nil
}

// Next returns the next image.
func (d *Dir) Next(ctx context.Context) (capture.Frame, error) {
	for {
		if d.files == nil {
			return capture.Frame{}, capture.ErrClosed
		}
		if d.i == len(d.files) {
			if d.seq == 0 {
				return capture.Frame{}, fmt.Errorf("image directory %s: no readable image in %d files", d.path, len(d.files))
			}
			if !d.opts.Loop {
				return capture.Frame{}, io.EOF
			}
			if d.good == 0 {
				return capture.Frame{}, fmt.Errorf("image directory %s: no readable image in %d files", d.path, len(d.files))
			}
			d.i, d.good = 0, 0
		}
		name := d.files[d.i]
		d.i++
		f, err := d.load(name)
		if err != nil {
			d.opts.Metrics.Corrupt()
			d.opts.Logger.Warn("capture: skipping image", "file", name, "err", err)
			continue
		}
		if err := d.pace.wait(ctx); err != nil {
			return capture.Frame{}, err
		}
		d.seq++
		d.good++
		f.Seq, f.Time = d.seq, time.Now()
		d.opts.Metrics.FrameIn()
		return f, nil
	}
}

func (d *Dir) load(name string) (capture.Frame, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return capture.Frame{}, err
	}
	if len(data) >= 2 && data[0] == 0xff && data[1] == 0xd8 {
		w, h, err := capture.DecodeJPEGConfig(data)
		if err != nil {
			return capture.Frame{}, err
		}
		return capture.Frame{Format: capture.FormatJPEG, Width: w, Height: h, Data: data}, nil
	}
	var img image.Image
	if strings.EqualFold(filepath.Ext(name), ".png") {
		img, err = png.Decode(strings.NewReader(string(data)))
	} else {
		img, _, err = image.Decode(strings.NewReader(string(data)))
	}
	if err != nil {
		return capture.Frame{}, fmt.Errorf("%w: %v", capture.ErrCorrupt, err)
	}
	rgb := capture.FromImage(img)
	return capture.Frame{Format: capture.FormatRGB24, Width: rgb.W, Height: rgb.H, Data: rgb.Pix, Image: rgb}, nil
}

// Close releases the source.
func (d *Dir) Close() error {
	d.files = nil
	return nil
}
