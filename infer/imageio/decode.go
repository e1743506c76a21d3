package imageio

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/webp"
)

// Sentinel errors; every error Decode returns wraps one of them (or is an
// I/O error from the reader).
var (
	// ErrTooLarge: the file or the image it declares exceeds Limits.
	ErrTooLarge = errors.New("image too large")
	// ErrFormat: unknown format, or a corrupt or truncated file.
	ErrFormat = errors.New("unsupported or corrupt image")
)

// TooLargeError says which limit an input broke. It wraps ErrTooLarge.
type TooLargeError struct {
	Format        Format
	Width, Height int   // declared size, 0 when the byte limit tripped first
	Bytes         int64 // bytes read when the byte limit tripped, else 0
	Limits        Limits
}

func (e *TooLargeError) Error() string {
	if e.Bytes > 0 {
		return fmt.Sprintf("%v: file is over %d bytes", ErrTooLarge, e.Limits.MaxBytes)
	}
	return fmt.Sprintf("%v: %s is %dx%d = %.1f megapixels, the limit is %.1f",
		ErrTooLarge, e.Format, e.Width, e.Height, float64(e.Width)*float64(e.Height)/1e6, float64(e.Limits.MaxPixels)/1e6)
}

// Unwrap makes errors.Is(err, ErrTooLarge) true.
func (e *TooLargeError) Unwrap() error { return ErrTooLarge }

// Limits bound what Decode accepts.
type Limits struct {
	// MaxPixels is the largest width*height accepted, checked from the
	// header before decoding; <= 0 means DefaultMaxPixels.
	MaxPixels int64
	// MaxBytes is the largest file accepted; <= 0 means DefaultMaxBytes.
	MaxBytes int64
}

// Default limits.
const (
	DefaultMaxPixels = 40_000_000
	DefaultMaxBytes  = 64 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultMaxPixels
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	return l
}

// Format names a decoded file format.
type Format string

// The formats Decode reads.
const (
	FormatJPEG Format = "jpeg"
	FormatPNG  Format = "png"
	FormatGIF  Format = "gif"
	FormatPGM  Format = "pgm" // binary P5
	FormatPPM  Format = "ppm" // binary P6
	FormatWebP Format = "webp"
)

// Info describes a decoded file.
type Info struct {
	Format Format
	// Width and Height as stored in the file, before the EXIF orientation
	// is applied (the returned image is upright, so it may be Height×Width).
	// For GIF they are the logical screen; the image returned is the first
	// frame, whose rectangle normally covers the whole screen.
	Width, Height int
	// Orientation is the EXIF orientation applied (1-8); 1 when the file
	// has none or an invalid value.
	Orientation int
	// Bytes is the file size.
	Bytes int64
}

// Sniff returns the format of a file from its first bytes, or "" when it
// is not one Decode reads.
func Sniff(b []byte) Format {
	switch {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return FormatJPEG
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return FormatPNG
	case bytes.HasPrefix(b, []byte("GIF87a")) || bytes.HasPrefix(b, []byte("GIF89a")):
		return FormatGIF
	case len(b) >= 3 && b[0] == 'P' && (b[1] == '5' || b[1] == '6') && isSpace(b[2]):
		if b[1] == '5' {
			return FormatPGM
		}
		return FormatPPM
	case len(b) >= 12 && bytes.Equal(b[:4], []byte("RIFF")) && bytes.Equal(b[8:12], []byte("WEBP")):
		return FormatWebP
	}
	return ""
}

// Decode reads one image from r and returns it upright as RGB. The whole
// input is read (up to lim.MaxBytes) before anything is decoded; the
// header's dimensions are checked against lim.MaxPixels before pixel
// memory is allocated.
func Decode(r io.Reader, lim Limits) (*RGB, Info, error) {
	lim = lim.withDefaults()
	data, err := io.ReadAll(io.LimitReader(r, lim.MaxBytes+1))
	if err != nil {
		return nil, Info{}, fmt.Errorf("read image: %w", err)
	}
	if int64(len(data)) > lim.MaxBytes {
		return nil, Info{}, &TooLargeError{Bytes: int64(len(data)), Limits: lim}
	}
	return DecodeBytes(data, lim)
}

// DecodeBytes is Decode for an image already in memory.
func DecodeBytes(data []byte, lim Limits) (*RGB, Info, error) {
	lim = lim.withDefaults()
	info := Info{Bytes: int64(len(data)), Orientation: 1}
	if int64(len(data)) > lim.MaxBytes {
		return nil, info, &TooLargeError{Bytes: int64(len(data)), Limits: lim}
	}
	info.Format = Sniff(data)
	if info.Format == "" {
		return nil, info, fmt.Errorf("%w: not JPEG, PNG, GIF, binary PGM/PPM or WebP (starts %q)", ErrFormat, head(data))
	}

	if info.Format == FormatPGM || info.Format == FormatPPM {
		h, err := parsePNM(data)
		if err != nil {
			return nil, info, fmt.Errorf("%w: %s: %v", ErrFormat, info.Format, err)
		}
		info.Width, info.Height = h.w, h.h
		if err := checkSize(info, lim); err != nil {
			return nil, info, err
		}
		img, err := decodePNM(data, h)
		if err != nil {
			return nil, info, fmt.Errorf("%w: %s: %v", ErrFormat, info.Format, err)
		}
		return img, info, nil
	}

	var cfg image.Config
	var err error
	switch info.Format {
	case FormatJPEG:
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(data))
	case FormatPNG:
		cfg, err = png.DecodeConfig(bytes.NewReader(data))
	case FormatGIF:
		cfg, err = gif.DecodeConfig(bytes.NewReader(data))
	case FormatWebP:
		cfg, err = webp.DecodeConfig(bytes.NewReader(data))
	}
	if err != nil {
		return nil, info, fmt.Errorf("%w: %s header: %v", ErrFormat, info.Format, err)
	}
	info.Width, info.Height = cfg.Width, cfg.Height
	if err := checkSize(info, lim); err != nil {
		return nil, info, err
	}

	var m image.Image
	switch info.Format {
	case FormatJPEG:
		m, err = jpeg.Decode(bytes.NewReader(data))
	case FormatPNG:
		m, err = png.Decode(bytes.NewReader(data))
	case FormatGIF:
		m, err = gif.Decode(bytes.NewReader(data)) // first frame only
	case FormatWebP:
		m, err = webp.Decode(bytes.NewReader(data))
	}
	if err != nil {
		return nil, info, fmt.Errorf("%w: %s: %v", ErrFormat, info.Format, err)
	}
	b := m.Bounds()
	if b.Empty() || int64(b.Dx())*int64(b.Dy()) > int64(info.Width)*int64(info.Height) {
		return nil, info, fmt.Errorf("%w: %s: decoded %v does not fit the declared %dx%d", ErrFormat, info.Format, b, info.Width, info.Height)
	}
	img := FromImage(m)
	if info.Format == FormatJPEG {
		info.Orientation = ExifOrientation(data)
		img = Orient(img, info.Orientation)
	}
	return img, info, nil
}

func checkSize(info Info, lim Limits) error {
	if info.Width <= 0 || info.Height <= 0 {
		return fmt.Errorf("%w: %s declares an empty %dx%d image", ErrFormat, info.Format, info.Width, info.Height)
	}
	if int64(info.Width)*int64(info.Height) > lim.MaxPixels {
		return &TooLargeError{Format: info.Format, Width: info.Width, Height: info.Height, Limits: lim}
	}
	return nil
}

func head(b []byte) []byte {
	if len(b) > 8 {
		return b[:8]
	}
	return b
}
