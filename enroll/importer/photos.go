package importer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"os"

	"golang.org/x/image/draw"
)

// PhotoLimits are what the gate accepts per photo (its
// FACEGATE_MQTT_LIMITS_MAXIMAGEBYTES and FACEGATE_MQTT_LIMITS_MAXPIXELS). A photo
// over them is scaled down and re-encoded as a JPEG until it fits (its
// EXIF segment kept, so the gate still turns it upright), and the row is
// reported with a warning.
type PhotoLimits struct {
	MaxBytes  int
	MaxPixels int
}

// DefaultPhotoLimits are the gate's defaults.
var DefaultPhotoLimits = PhotoLimits{MaxBytes: 1 << 20, MaxPixels: 4096 * 4096}

// Files larger than maxFileBytes or images of more than maxSourcePixels
// are not even decoded: no enrollment photo is that large.
const (
	maxFileBytes    = 64 << 20
	maxSourcePixels = 100_000_000
)

func (l PhotoLimits) withDefaults() PhotoLimits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultPhotoLimits.MaxBytes
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultPhotoLimits.MaxPixels
	}
	return l
}

// photo is one photo file as it will be sent.
type photo struct {
	path   string
	data   []byte
	sha256 string // of data: what the gate records and list returns
	note   string // why data is not the file's bytes, when it is not
}

// loadPhotos reads and checks a row's photos. The first bad photo refuses
// the row (a person is enrolled from all of their photos or not at all).
// The same file given twice is sent once, with a warning.
func loadPhotos(paths []string, lim PhotoLimits) ([]photo, []string, *refusal) {
	var out []photo
	var warnings []string
	seen := map[string]string{}
	for _, p := range paths {
		ph, bad := loadPhoto(p, lim)
		if bad != nil {
			return nil, nil, bad
		}
		if first, ok := seen[ph.sha256]; ok {
			warnings = append(warnings, fmt.Sprintf("%s is the same photo as %s: sent once", p, first))
			continue
		}
		seen[ph.sha256] = p
		if ph.note != "" {
			warnings = append(warnings, ph.note)
		}
		out = append(out, ph)
	}
	return out, warnings, nil
}

func loadPhoto(path string, lim PhotoLimits) (photo, *refusal) {
	lim = lim.withDefaults()
	refuse := func(code, format string, args ...any) (photo, *refusal) {
		return photo{}, &refusal{code: code, photo: path, reason: path + ": " + fmt.Sprintf(format, args...)}
	}
	f, err := os.Open(path)
	if err != nil {
		return refuse(CodeMissingFile, "%v", unwrapPath(err))
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	f.Close()
	if err != nil {
		return refuse(CodeMissingFile, "%v", unwrapPath(err))
	}
	if len(data) > maxFileBytes {
		return refuse(CodeTooLarge, "more than %d MiB: not a photo to enrol from", maxFileBytes>>20)
	}
	var cfg image.Config
	var decode func(io.Reader) (image.Image, error)
	switch {
	case len(data) >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF:
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(data))
		decode = jpeg.Decode
	case bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")):
		cfg, err = png.DecodeConfig(bytes.NewReader(data))
		decode = png.Decode
	case len(data) == 0:
		return refuse(CodeCorruptImage, "empty file")
	default:
		return refuse(CodeBadFormat, "not a JPEG or PNG file (starts %q): convert it", data[:min(len(data), 8)])
	}
	if err != nil {
		return refuse(CodeCorruptImage, "header: %v", err)
	}
	pixels := cfg.Width * cfg.Height
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return refuse(CodeCorruptImage, "declares an empty %dx%d image", cfg.Width, cfg.Height)
	}
	if pixels > maxSourcePixels {
		return refuse(CodeTooLarge, "%dx%d: more than %d megapixels", cfg.Width, cfg.Height, maxSourcePixels/1_000_000)
	}
	img, err := decode(bytes.NewReader(data))
	if err != nil {
		return refuse(CodeCorruptImage, "%v", err)
	}
	ph := photo{path: path, data: data}
	if len(data) > lim.MaxBytes || pixels > lim.MaxPixels {
		small, err := shrink(img, data, lim)
		if err != nil {
			return refuse(CodeTooLarge, "%v", err)
		}
		b := mustConfig(small)
		ph.note = fmt.Sprintf("%s re-encoded to fit the gate's limits: %dx%d %s -> %dx%d JPEG %s", path,
			cfg.Width, cfg.Height, sizeText(len(data)), b.Width, b.Height, sizeText(len(small)))
		ph.data = small
	}
	sum := sha256.Sum256(ph.data)
	ph.sha256 = hex.EncodeToString(sum[:])
	return ph, nil
}

// shrink scales img down and encodes it as a JPEG (quality 90) until it
// is within lim, keeping the original's EXIF segment. It is deterministic,
// so a rerun sends (and compares) the same bytes.
func shrink(img image.Image, orig []byte, lim PhotoLimits) ([]byte, error) {
	b := img.Bounds()
	pixels := float64(b.Dx() * b.Dy())
	scale := math.Min(1, math.Sqrt(float64(lim.MaxPixels)/pixels))
	exif := exifSegment(orig)
	for try := 0; try < 12; try++ {
		w, h := max(1, int(float64(b.Dx())*scale)), max(1, int(float64(b.Dy())*scale))
		dst := image.NewRGBA(image.Rect(0, 0, w, h))
		draw.CatmullRom.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
		var buf bytes.Buffer
		buf.Write([]byte{0xFF, 0xD8})
		buf.Write(exif)
		if err := jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 90}); err != nil {
			return nil, fmt.Errorf("re-encode: %w", err)
		}
		out := buf.Bytes()
		// jpeg.Encode wrote its own SOI after ours: drop it.
		out = append(out[:2+len(exif)], out[2+len(exif)+2:]...)
		if len(out) <= lim.MaxBytes {
			return out, nil
		}
		// Bytes go roughly with pixels: aim under the limit, then step down.
		scale *= math.Min(0.9, math.Sqrt(0.9*float64(lim.MaxBytes)/float64(len(out))))
	}
	return nil, fmt.Errorf("does not fit in %s even scaled down", sizeText(lim.MaxBytes))
}

// exifSegment returns a JPEG's APP1 Exif segment (marker included), or
// nil: the re-encoded photo keeps it, so that the gate applies the same
// EXIF orientation to it.
func exifSegment(jpg []byte) []byte {
	if len(jpg) < 4 || jpg[0] != 0xFF || jpg[1] != 0xD8 {
		return nil
	}
	for i := 2; i+4 <= len(jpg); {
		if jpg[i] != 0xFF {
			return nil
		}
		marker := jpg[i+1]
		if marker == 0xDA || marker == 0xD9 { // start of scan, end of image
			return nil
		}
		n := int(jpg[i+2])<<8 | int(jpg[i+3])
		if n < 2 || i+2+n > len(jpg) {
			return nil
		}
		if marker == 0xE1 && bytes.HasPrefix(jpg[i+4:i+2+n], []byte("Exif\x00\x00")) {
			return jpg[i : i+2+n]
		}
		i += 2 + n
	}
	return nil
}

func mustConfig(jpg []byte) image.Config {
	c, _ := jpeg.DecodeConfig(bytes.NewReader(jpg))
	return c
}

func sizeText(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", (n+1023)/1024)
}

// unwrapPath drops the path an *os.PathError repeats (the report names it).
func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}
