package imageio

import (
	"errors"
	"fmt"
)

// pnmHeader is a parsed binary Netpbm header (P5 grey or P6 RGB).
type pnmHeader struct {
	channels int // 1 for P5, 3 for P6
	w, h     int
	maxval   int
	data     int // offset of the first sample
}

// maxPNMDim bounds each header number so that products cannot overflow;
// the pixel limit is checked separately.
const maxPNMDim = 1 << 24

// parsePNM reads a P5/P6 header: magic, then width, height and maxval as
// decimal numbers separated by whitespace, with '#' comments running to
// the end of a line allowed anywhere between them, then exactly one
// whitespace byte before the samples.
func parsePNM(b []byte) (pnmHeader, error) {
	var h pnmHeader
	if len(b) < 3 || b[0] != 'P' || (b[1] != '5' && b[1] != '6') {
		return h, errors.New("not a binary PGM/PPM (P5/P6) file")
	}
	h.channels = 1
	if b[1] == '6' {
		h.channels = 3
	}
	i := 2
	var vals [3]int
	for k, name := range []string{"width", "height", "maxval"} {
		// Skip whitespace and comments; at least one separator is required.
		start := i
		for i < len(b) {
			if isSpace(b[i]) {
				i++
			} else if b[i] == '#' {
				for i < len(b) && b[i] != '\n' && b[i] != '\r' {
					i++
				}
			} else {
				break
			}
		}
		if i == start {
			return h, fmt.Errorf("header: no separator before %s", name)
		}
		if i >= len(b) {
			return h, fmt.Errorf("header: truncated before %s", name)
		}
		n, digits := 0, 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			n = 10*n + int(b[i]-'0')
			digits++
			i++
			if n > maxPNMDim {
				return h, fmt.Errorf("header: %s is too big", name)
			}
		}
		if digits == 0 {
			return h, fmt.Errorf("header: %s is not a number", name)
		}
		vals[k] = n
	}
	if i >= len(b) || !isSpace(b[i]) {
		return h, errors.New("header: no whitespace after maxval")
	}
	h.w, h.h, h.maxval, h.data = vals[0], vals[1], vals[2], i+1
	if h.maxval < 1 || h.maxval > 65535 {
		return h, fmt.Errorf("header: maxval %d is not in 1..65535", h.maxval)
	}
	return h, nil
}

// decodePNM converts the samples to RGB, scaling maxval to 255 (rounded).
// Samples above maxval are clamped. Bytes after the image (further images
// of a multi-image file) are ignored.
func decodePNM(b []byte, h pnmHeader) (*RGB, error) {
	bps := 1
	if h.maxval > 255 {
		bps = 2
	}
	need := int64(h.w) * int64(h.h) * int64(h.channels*bps)
	if int64(len(b)-h.data) < need {
		return nil, fmt.Errorf("truncated: %d sample bytes, want %d", len(b)-h.data, need)
	}
	samples := b[h.data:]
	var lut []uint8
	if bps == 1 && h.maxval != 255 {
		lut = make([]uint8, 256)
		for v := range lut {
			lut[v] = scaleSample(v, h.maxval)
		}
	}
	img := NewRGB(h.w, h.h)
	n := h.w * h.h
	for p := 0; p < n; p++ {
		for c := 0; c < 3; c++ {
			si := p*h.channels + c%h.channels
			var v uint8
			switch {
			case bps == 2:
				v = scaleSample(int(samples[2*si])<<8|int(samples[2*si+1]), h.maxval)
			case lut != nil:
				v = lut[samples[si]]
			default:
				v = samples[si]
			}
			img.Pix[3*p+c] = v
		}
	}
	return img, nil
}

func scaleSample(v, maxval int) uint8 {
	if v >= maxval {
		return 255
	}
	return uint8((v*255 + maxval/2) / maxval)
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}
