package capture

import (
	"fmt"
	"time"
)

// PixelFormat is a V4L2 FourCC code (the same numbering as
// github.com/blackjack/webcam.PixelFormat and linux/videodev2.h).
type PixelFormat uint32

// fourcc builds a V4L2 pixel format code.
func fourcc(a, b, c, d byte) PixelFormat {
	return PixelFormat(uint32(a) | uint32(b)<<8 | uint32(c)<<16 | uint32(d)<<24)
}

// Pixel formats facegate can decode.
var (
	// FormatMJPEG is motion JPEG: each frame a complete JPEG image.
	FormatMJPEG = fourcc('M', 'J', 'P', 'G')
	// FormatJPEG is what some drivers call a JPEG-per-frame stream.
	FormatJPEG = fourcc('J', 'P', 'E', 'G')
	// FormatYUYV is packed 4:2:2 Y0 U Y1 V.
	FormatYUYV = fourcc('Y', 'U', 'Y', 'V')
	// FormatUYVY is packed 4:2:2 U Y0 V Y1.
	FormatUYVY = fourcc('U', 'Y', 'V', 'Y')
	// FormatRGB24 is packed 8-bit R G B.
	FormatRGB24 = fourcc('R', 'G', 'B', '3')
	// FormatGrey is 8-bit luma only.
	FormatGrey = fourcc('G', 'R', 'E', 'Y')
)

// String returns the FourCC, e.g. "YUYV".
func (p PixelFormat) String() string {
	b := []byte{byte(p), byte(p >> 8), byte(p >> 16), byte(p >> 24)}
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

// Compressed reports whether frames in this format are JPEG images of
// variable length.
func (p PixelFormat) Compressed() bool { return p == FormatMJPEG || p == FormatJPEG }

// Decodable reports whether Decode understands the format.
func (p PixelFormat) Decodable() bool {
	switch p {
	case FormatMJPEG, FormatJPEG, FormatYUYV, FormatUYVY, FormatRGB24, FormatGrey:
		return true
	}
	return false
}

// FrameSize returns the byte size of an uncompressed frame, or 0 for
// compressed or unknown formats.
func (p PixelFormat) FrameSize(w, h int) int {
	switch p {
	case FormatYUYV, FormatUYVY:
		return w * h * 2
	case FormatRGB24:
		return w * h * 3
	case FormatGrey:
		return w * h
	}
	return 0
}

// Frame is one captured picture.
//
// A Frame owns its memory: sources copy driver buffers before returning
// frames, so a Frame stays valid for as long as the caller keeps it.
type Frame struct {
	// Seq increases by one for every frame the source delivers, across
	// reconnects and file loops; gaps at the consumer mean dropped frames.
	Seq uint64
	// Time is when the frame was captured (dequeued from the driver, or
	// read from the file).
	Time time.Time
	// Width and Height in pixels (for compressed formats as negotiated
	// with the device; the decoded image's size is authoritative).
	Width, Height int
	// Format of Data.
	Format PixelFormat
	// Stride is the bytes per row of uncompressed Data when the driver
	// pads rows; 0 means tightly packed.
	Stride int
	// Data is the raw frame as the source delivered it (nil when the
	// source produced a decoded image directly).
	Data []byte
	// Image is the decoded frame, set by the source (for already decoded
	// input) or by Decode/Latest.
	Image *RGB
}

// RGB returns the frame as packed RGB, decoding Data on first use and
// caching the result in f.Image.
func (f *Frame) RGB() (*RGB, error) {
	if f.Image != nil {
		return f.Image, nil
	}
	img, err := DecodeStride(f.Format, f.Data, f.Width, f.Height, f.Stride)
	if err != nil {
		return nil, fmt.Errorf("frame %d: %w", f.Seq, err)
	}
	f.Image = img
	return img, nil
}
