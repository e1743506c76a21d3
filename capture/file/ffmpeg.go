package file

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/facegate/facegate/capture"
)

// FFmpegOptions adds ffmpeg-specific settings to Options.
type FFmpegOptions struct {
	Options
	// Binary is the ffmpeg executable (default: "ffmpeg" from PATH).
	Binary string
	// MaxWidth/MaxHeight, if set, make ffmpeg downscale (keeping the
	// aspect ratio) so huge videos don't cost a full-size decode.
	MaxWidth, MaxHeight int
}

// ErrNoFFmpeg is returned when the ffmpeg program cannot be found.
var ErrNoFFmpeg = errors.New("ffmpeg not found")

// FFmpeg decodes any video file ffmpeg understands, through an ffmpeg
// subprocess writing PPM frames to a pipe (each frame carries its size, so
// rotated or size-changing streams need no probing).
type FFmpeg struct {
	path   string
	cmd    *exec.Cmd
	out    *bufio.Reader
	stderr *tailBuffer
	opts   FFmpegOptions
	pace   *pacer
	seq    uint64
	done   bool
	closed bool
}

// OpenFFmpeg starts ffmpeg on path. Pacing: Options.FPS > 0 resamples to
// that rate (ffmpeg's fps filter) and paces; 0 plays at the file's own rate
// (ffmpeg -re); capture.FPSMax decodes as fast as possible.
func OpenFFmpeg(path string, opts FFmpegOptions) (*FFmpeg, error) {
	opts.defaults()
	bin := opts.Binary
	if bin == "" {
		bin = "ffmpeg"
	}
	exe, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("video file %s: %w (%v): install it (Debian: apt-get install ffmpeg) or use a directory of images or an .mjpeg file", path, ErrNoFFmpeg, err)
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("video file: %w", err)
	}
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error"}
	if opts.FPS == 0 {
		args = append(args, "-re")
	}
	if opts.Loop {
		args = append(args, "-stream_loop", "-1")
	}
	args = append(args, "-i", path, "-an", "-sn", "-dn")
	var filters []string
	if opts.FPS > 0 {
		filters = append(filters, "fps="+strconv.FormatFloat(opts.FPS, 'f', -1, 64))
	}
	if opts.MaxWidth > 0 && opts.MaxHeight > 0 {
		filters = append(filters, fmt.Sprintf("scale='min(iw,%d)':'min(ih,%d)':force_original_aspect_ratio=decrease", opts.MaxWidth, opts.MaxHeight))
	}
	if len(filters) > 0 {
		args = append(args, "-vf", strings.Join(filters, ","))
	}
	args = append(args, "-f", "image2pipe", "-c:v", "ppm", "-")
	cmd := exec.Command(exe, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("video file %s: %w", path, err)
	}
	tail := &tailBuffer{max: 4096}
	cmd.Stderr = tail
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("video file %s: start ffmpeg: %w", path, err)
	}
	rate := 0.0 // -re already paces at the native rate
	if opts.FPS > 0 {
		rate = opts.FPS
	}
	return &FFmpeg{path: path, cmd: cmd, out: bufio.NewReaderSize(stdout, 1<<20), stderr: tail, opts: opts, pace: newPacer(rate)}, nil
}

// Next returns the next decoded frame (FormatRGB24 with Image set).
func (f *FFmpeg) Next(ctx context.Context) (capture.Frame, error) {
	if f.closed {
		return capture.Frame{}, capture.ErrClosed
	}
	if f.done {
		return capture.Frame{}, io.EOF
	}
	if err := ctx.Err(); err != nil {
		return capture.Frame{}, err
	}
	img, err := readPPM(f.out)
	if err != nil {
		f.done = true
		werr := f.cmd.Wait()
		msg := strings.TrimSpace(f.stderr.String())
		switch {
		case err == io.EOF && werr == nil:
			if f.seq == 0 {
				return capture.Frame{}, fmt.Errorf("video file %s: ffmpeg produced no frames: %s", f.path, msg)
			}
			if msg != "" {
				f.opts.Logger.Warn("capture: ffmpeg reported problems", "file", f.path, "stderr", msg)
			}
			return capture.Frame{}, io.EOF
		case werr != nil:
			return capture.Frame{}, fmt.Errorf("video file %s: ffmpeg failed (%v): %s", f.path, werr, msg)
		default:
			f.opts.Metrics.Corrupt()
			return capture.Frame{}, fmt.Errorf("video file %s: reading ffmpeg output: %w", f.path, err)
		}
	}
	if err := f.pace.wait(ctx); err != nil {
		return capture.Frame{}, err
	}
	f.seq++
	f.opts.Metrics.FrameIn()
	return capture.Frame{Seq: f.seq, Time: time.Now(), Width: img.W, Height: img.H, Format: capture.FormatRGB24, Data: img.Pix, Image: img}, nil
}

// Close stops ffmpeg.
func (f *FFmpeg) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	if !f.done {
		f.done = true
		_ = f.cmd.Process.Kill()
		_ = f.cmd.Wait() // killed: the exit status is expected to be an error
	}
	return nil
}

// readPPM reads one binary PPM (P6, maxval 255) image.
func readPPM(r *bufio.Reader) (*capture.RGB, error) {
	var fields [4]string
	for i := range fields {
		tok, err := ppmToken(r)
		if err != nil {
			if i == 0 && err == io.EOF {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("ppm header: %w", noEOF(err))
		}
		fields[i] = tok
	}
	if fields[0] != "P6" {
		return nil, fmt.Errorf("ppm: magic %q, want P6", fields[0])
	}
	w, err1 := strconv.Atoi(fields[1])
	h, err2 := strconv.Atoi(fields[2])
	if err1 != nil || err2 != nil || w <= 0 || h <= 0 || w > 16384 || h > 16384 || fields[3] != "255" {
		return nil, fmt.Errorf("ppm: bad header %q", strings.Join(fields[:], " "))
	}
	img := capture.NewRGB(w, h)
	if _, err := io.ReadFull(r, img.Pix); err != nil {
		return nil, fmt.Errorf("ppm %dx%d pixels: %w", w, h, noEOF(err))
	}
	return img, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ppmToken reads one whitespace-delimited header token, consuming exactly
// one whitespace byte after it (the PPM rule before the raster).
func ppmToken(r *bufio.Reader) (string, error) {
	var tok []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			if len(tok) > 0 && err == io.EOF {
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		switch {
		case b == '#' && len(tok) == 0:
			if _, err := r.ReadString('\n'); err != nil {
				return "", err
			}
		case b == ' ' || b == '\n' || b == '\r' || b == '\t':
			if len(tok) > 0 {
				return string(tok), nil
			}
		default:
			if len(tok) > 16 {
				return "", errors.New("token too long")
			}
			tok = append(tok, b)
		}
	}
}

// tailBuffer keeps the last max bytes written (ffmpeg's stderr).
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
