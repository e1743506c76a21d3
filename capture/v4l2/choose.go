package v4l2

import (
	"fmt"
	"sort"
	"strings"

	"github.com/blackjack/webcam"

	"github.com/facegate/facegate/capture"
)

// Mode is a negotiated capture format.
type Mode struct {
	Format        capture.PixelFormat
	Width, Height int
}

func (m Mode) String() string { return fmt.Sprintf("%s %dx%d", m.Format, m.Width, m.Height) }

// FormatInfo describes one pixel format a device offers.
type FormatInfo struct {
	Format      capture.PixelFormat
	Description string
	Sizes       []webcam.FrameSize
}

// ListFormats returns the device's formats (sorted by FourCC) with their
// frame sizes.
func ListFormats(d Device) []FormatInfo {
	var out []FormatInfo
	for f, desc := range d.GetSupportedFormats() {
		out = append(out, FormatInfo{Format: capture.PixelFormat(f), Description: desc, Sizes: d.GetSupportedFrameSizes(f)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Format.String() < out[j].Format.String() })
	return out
}

// Choose picks a mode for the configured format ("auto", "MJPEG", "YUYV")
// and maximum size. It prefers the largest size that fits in
// maxW×maxH (by area); auto tries MJPEG first, then YUYV. Errors say what
// the device offers.
func Choose(formats []FormatInfo, format string, maxW, maxH int) (Mode, error) {
	var want []capture.PixelFormat
	switch strings.ToUpper(format) {
	case "", "AUTO":
		want = []capture.PixelFormat{capture.FormatMJPEG, capture.FormatYUYV}
	case "MJPEG", "MJPG":
		want = []capture.PixelFormat{capture.FormatMJPEG}
	case "YUYV", "YUY2":
		want = []capture.PixelFormat{capture.FormatYUYV}
	default:
		// Any FourCC the decoder understands, e.g. for tests: "RGB3", "UYVY".
		for _, f := range []capture.PixelFormat{capture.FormatUYVY, capture.FormatRGB24, capture.FormatGrey, capture.FormatJPEG} {
			if strings.EqualFold(f.String(), format) {
				want = []capture.PixelFormat{f}
			}
		}
		if want == nil {
			return Mode{}, fmt.Errorf("unsupported camera format %q: want MJPEG, YUYV or auto", format)
		}
	}
	var offered []string
	for _, fi := range formats {
		offered = append(offered, fi.Format.String())
	}
	var sizeErr error
	for _, wf := range want {
		for _, fi := range formats {
			if fi.Format != wf {
				continue
			}
			w, h, ok := largestFit(fi.Sizes, maxW, maxH)
			if ok {
				return Mode{Format: wf, Width: w, Height: h}, nil
			}
			sizeErr = fmt.Errorf("unsupported camera size: %s offers no size within %dx%d (sizes: %s)", wf, maxW, maxH, sizesString(fi.Sizes))
		}
	}
	if sizeErr != nil && len(want) == 1 {
		return Mode{}, sizeErr
	}
	if sizeErr != nil {
		return Mode{}, fmt.Errorf("no MJPEG or YUYV mode within %dx%d: %w", maxW, maxH, sizeErr)
	}
	names := make([]string, len(want))
	for i, w := range want {
		names[i] = w.String()
	}
	return Mode{}, fmt.Errorf("unsupported camera format: want %s, device offers %s", strings.Join(names, " or "), strings.Join(offered, ", "))
}

// largestFit returns the biggest (by area) size within maxW×maxH among
// discrete and stepwise sizes.
func largestFit(sizes []webcam.FrameSize, maxW, maxH int) (int, int, bool) {
	bw, bh := 0, 0
	for _, s := range sizes {
		var w, h int
		if s.StepWidth == 0 && s.StepHeight == 0 {
			w, h = int(s.MaxWidth), int(s.MaxHeight)
			if w > maxW || h > maxH {
				continue
			}
		} else {
			w = stepFit(int(s.MinWidth), int(s.MaxWidth), int(s.StepWidth), maxW)
			h = stepFit(int(s.MinHeight), int(s.MaxHeight), int(s.StepHeight), maxH)
			if w <= 0 || h <= 0 {
				continue
			}
		}
		if w*h > bw*bh {
			bw, bh = w, h
		}
	}
	return bw, bh, bw > 0
}

// stepFit is the largest min+k*step <= min(max, limit), or 0.
func stepFit(lo, hi, step, limit int) int {
	if limit < lo {
		return 0
	}
	v := min(hi, limit)
	if step > 0 {
		v = lo + (v-lo)/step*step
	}
	return v
}

func sizesString(sizes []webcam.FrameSize) string {
	parts := make([]string, len(sizes))
	for i, s := range sizes {
		parts[i] = s.GetString()
	}
	return strings.Join(parts, " ")
}
