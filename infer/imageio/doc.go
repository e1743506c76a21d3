// Package imageio turns untrusted image files into the packed RGB images
// the rest of facegate's pipeline works on, and converts them into model
// input.
//
// Decode reads JPEG, PNG, GIF (first frame), binary PGM/PPM (P5/P6, 8- and
// 16-bit) and WebP (lossy and lossless, through golang.org/x/image/webp). It
// sniffs the format from the magic bytes, reads the header dimensions first
// and rejects images over Limits.MaxPixels (40 megapixels by default) or
// Limits.MaxBytes with ErrTooLarge BEFORE any pixel memory is allocated.
// Unknown or corrupt input fails with ErrFormat. The EXIF orientation of
// JPEGs (APP1 "Exif", IFD0 tag 0x0112, values 1-8) is parsed here and
// applied, so the image Decode returns is upright. Grey, paletted, RGBA and
// YCbCr images all become RGB; alpha is dropped (not composited).
//
// RGB is a tight packed RGB24 image (stride 3*W). capture.RGB with a tight
// stride has the same memory layout; convert without copying with
// &imageio.RGB{W: f.W, H: f.H, Pix: f.Packed()}.
//
// Resize scales an RGB image (area averaging when shrinking, bilinear when
// enlarging) and ToFloat32 writes the HWC float32 0..255 tensor data the
// models take, reusing the caller's buffer. Resizer fuses the two: it scales
// an image (optionally framed by black padding that is never built) straight
// into a float32 input buffer, reusing its filter taps between calls.
//
// Dependencies: the standard library and golang.org/x/image only. imageio
// must not use cgo and must not import TensorFlow, the rest of infer or any
// other facegate package (internal/archtest enforces this), so it builds
// with CGO_ENABLED=0.
package imageio
