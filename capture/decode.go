package capture

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
)

// ErrCorrupt marks frames that cannot be decoded (bad JPEG data, short
// buffers). The pipeline skips and counts them; it never stops on one.
var ErrCorrupt = errors.New("corrupt frame")

// ErrUnsupportedFormat is returned by Decode for pixel formats it cannot
// convert.
var ErrUnsupportedFormat = errors.New("unsupported pixel format")

// Decode converts a raw frame to packed RGB. w and h are the negotiated
// frame size (ignored for JPEG, whose header carries the size).
func Decode(format PixelFormat, data []byte, w, h int) (*RGB, error) {
	return DecodeStride(format, data, w, h, 0)
}

// DecodeStride is Decode for uncompressed frames whose rows are stride
// bytes apart (driver padding); stride 0 means tightly packed.
func DecodeStride(format PixelFormat, data []byte, w, h, stride int) (*RGB, error) {
	if row := format.FrameSize(w, 1); row > 0 && stride > row && h > 0 {
		if need := (h-1)*stride + row; len(data) < need {
			return nil, fmt.Errorf("%w: short %s %dx%d frame (stride %d): %d bytes, want %d", ErrCorrupt, format, w, h, stride, len(data), need)
		}
		packed := make([]byte, row*h)
		for y := 0; y < h; y++ {
			copy(packed[y*row:(y+1)*row], data[y*stride:])
		}
		data = packed
	}
	switch format {
	case FormatMJPEG, FormatJPEG:
		return DecodeJPEG(data)
	case FormatYUYV, FormatUYVY, FormatRGB24, FormatGrey:
		if w <= 0 || h <= 0 {
			return nil, fmt.Errorf("%w: %s frame without a size", ErrCorrupt, format)
		}
		if want := format.FrameSize(w, h); len(data) < want {
			return nil, fmt.Errorf("%w: short %s %dx%d frame: %d bytes, want %d", ErrCorrupt, format, w, h, len(data), want)
		}
		dst := NewRGB(w, h)
		switch format {
		case FormatYUYV:
			YUYVToRGB(dst, data)
		case FormatUYVY:
			UYVYToRGB(dst, data)
		case FormatRGB24:
			copy(dst.Pix, data[:w*h*3])
		case FormatGrey:
			for i, v := range data[:w*h] {
				dst.Pix[3*i], dst.Pix[3*i+1], dst.Pix[3*i+2] = v, v, v
			}
		}
		return dst, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrUnsupportedFormat, format)
}

// DecodeJPEG decodes one JPEG/MJPEG frame with image/jpeg. Frames without
// Huffman tables (common from UVC webcams) get the standard tables
// inserted. Any decoding failure wraps ErrCorrupt.
func DecodeJPEG(data []byte) (*RGB, error) {
	if len(data) < 4 || data[0] != 0xff || data[1] != 0xd8 {
		return nil, fmt.Errorf("%w: jpeg: missing SOI marker", ErrCorrupt)
	}
	return jpegBackend(withHuffmanTables(data))
}

// jpegBackend decodes a JPEG that has Huffman tables; jpeg_turbo.go swaps
// it for libjpeg-turbo in builds with the turbojpeg tag.
var (
	jpegBackend     = decodeStdJPEG
	jpegBackendName = "image/jpeg"
)

// JPEGDecoder names the MJPEG decoder in this build ("image/jpeg", or
// "libjpeg-turbo" with -tags turbojpeg), for logs.
func JPEGDecoder() string { return jpegBackendName }

func decodeStdJPEG(data []byte) (*RGB, error) {
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: jpeg: %v", ErrCorrupt, err)
	}
	return FromImage(img), nil
}

// DecodeJPEGConfig returns the size in a JPEG header without decoding.
func DecodeJPEGConfig(data []byte) (w, h int, err error) {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return 0, 0, fmt.Errorf("%w: jpeg header: %v", ErrCorrupt, err)
	}
	return cfg.Width, cfg.Height, nil
}

// withHuffmanTables returns data with standardDHT inserted before the
// first SOS when no DHT segment precedes it; otherwise data unchanged.
func withHuffmanTables(data []byte) []byte {
	i := 2
	for i+4 <= len(data) {
		if data[i] != 0xff {
			return data // not at a marker: let the decoder report it
		}
		m := data[i+1]
		switch {
		case m == 0xff: // fill byte
			i++
			continue
		case m == 0xc4: // DHT present
			return data
		case m == 0xda: // SOS without a preceding DHT
			out := make([]byte, 0, len(data)+len(standardDHT))
			out = append(out, data[:i]...)
			out = append(out, standardDHT...)
			return append(out, data[i:]...)
		case m == 0x01 || (m >= 0xd0 && m <= 0xd8):
			i += 2
			continue
		}
		n := int(data[i+2])<<8 | int(data[i+3])
		i += 2 + n
	}
	return data
}

// ycbcrToRGB converts a decoded JPEG (full-range BT.601, any chroma
// subsampling) into dst using the same 16.16 fixed-point arithmetic as
// image/color.YCbCrToRGB.
func ycbcrToRGB(dst *RGB, s *image.YCbCr) {
	b := s.Rect
	w, h := b.Dx(), b.Dy()
	var cxShift, cyShift uint
	switch s.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		cxShift = 1
	case image.YCbCrSubsampleRatio420:
		cxShift, cyShift = 1, 1
	case image.YCbCrSubsampleRatio440:
		cyShift = 1
	case image.YCbCrSubsampleRatio411:
		cxShift = 2
	case image.YCbCrSubsampleRatio410:
		cxShift, cyShift = 2, 1
	}
	// Chroma planes are indexed relative to the rectangle's origin the
	// way image.YCbCr.COffset does.
	cx0 := b.Min.X >> cxShift
	cy0 := b.Min.Y >> cyShift
	for y := 0; y < h; y++ {
		sy := b.Min.Y + y
		yrow := s.Y[(sy-b.Min.Y)*s.YStride:][:w]
		crow := ((sy >> cyShift) - cy0) * s.CStride
		cb := s.Cb[crow:]
		cr := s.Cr[crow:]
		out := dst.Row(y)
		for x, yv := range yrow {
			ci := ((b.Min.X + x) >> cxShift) - cx0
			cbv, crv := cb[ci], cr[ci]
			yy := int32(yv) * 0x10101
			q := out[3*x : 3*x+3 : 3*x+3]
			q[0] = clampFull(yy + jcrR[crv])
			q[1] = clampFull(yy + jcbG[cbv] + jcrG[crv])
			q[2] = clampFull(yy + jcbB[cbv])
		}
	}
}

// JFIF YCbCr->RGB lookup tables (the constants of image/color.YCbCrToRGB).
var jcrR, jcbG, jcrG, jcbB [256]int32

func init() {
	for i := range 256 {
		c := int32(i) - 128
		jcrR[i] = 91881 * c
		jcbG[i] = -22554 * c
		jcrG[i] = -46802 * c
		jcbB[i] = 116130 * c
	}
}

// clampFull is image/color's 16.16 clamp: values outside 0..255 saturate.
func clampFull(v int32) uint8 {
	if uint32(v)&0xff000000 == 0 {
		return uint8(v >> 16)
	}
	return uint8(^(v >> 31))
}

// Limited-range BT.601 coefficients (what V4L2 YUYV/UYVY use by default),
// 16.16 fixed point: R = 1.164(Y-16) + 1.596(V-128) and so on.
const (
	kY  = 76309  // 1.164
	kRV = 104597 // 1.596
	kGU = 25675  // 0.392
	kGV = 53279  // 0.813
	kBU = 132201 // 2.017
)

func clamp16(v int32) uint8 {
	if uint32(v)&0xff000000 == 0 {
		return uint8(v >> 16)
	}
	return uint8(^(v >> 31))
}

// Lookup tables for the 4:2:2 conversion (16.16 fixed point, rounding
// folded into yTab).
var yTab, rvTab, guTab, gvTab, buTab [256]int32

func init() {
	for i := range 256 {
		c := int32(i) - 128
		yTab[i] = kY*(int32(i)-16) + 1<<15
		rvTab[i] = kRV * c
		guTab[i] = -kGU * c
		gvTab[i] = -kGV * c
		buTab[i] = kBU * c
	}
}

// yuv422Row converts one row of packed 4:2:2; y0, u, y1, v are the byte
// offsets of the components in each 4-byte group (YUYV: 0,1,2,3; UYVY:
// 1,0,3,2).
func yuv422Row(out, in []byte, y0, u, y1, v int) {
	for i, o := 0, 0; i+4 <= len(in) && o+6 <= len(out); i, o = i+4, o+6 {
		p := in[i : i+4 : i+4]
		q := out[o : o+6 : o+6]
		rv := rvTab[p[v]]
		gc := guTab[p[u]] + gvTab[p[v]]
		bu := buTab[p[u]]
		a := yTab[p[y0]]
		q[0] = clamp16(a + rv)
		q[1] = clamp16(a + gc)
		q[2] = clamp16(a + bu)
		c := yTab[p[y1]]
		q[3] = clamp16(c + rv)
		q[4] = clamp16(c + gc)
		q[5] = clamp16(c + bu)
	}
}

// YUYVToRGB converts a packed YUYV (Y0 U Y1 V) frame of dst's size into dst
// (limited-range BT.601). src must hold at least 2*W*H bytes. Odd widths
// are not valid for 4:2:2 and have their last column left black.
func YUYVToRGB(dst *RGB, src []byte) {
	w := dst.W
	for y := 0; y < dst.H; y++ {
		yuv422Row(dst.Row(y), src[y*2*w:y*2*w+2*w], 0, 1, 2, 3)
	}
}

// UYVYToRGB is YUYVToRGB for U Y0 V Y1 byte order.
func UYVYToRGB(dst *RGB, src []byte) {
	w := dst.W
	for y := 0; y < dst.H; y++ {
		yuv422Row(dst.Row(y), src[y*2*w:y*2*w+2*w], 1, 0, 3, 2)
	}
}
