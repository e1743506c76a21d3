package capture

// Resize scales src to w×h. Shrinking averages every source pixel that
// falls into a destination pixel (area/box filter: cheap, no aliasing, what
// a detector input wants); enlarging picks the nearest pixel.
func Resize(src *RGB, w, h int) *RGB {
	if w <= 0 || h <= 0 {
		return NewRGB(0, 0)
	}
	if w == src.W && h == src.H {
		dst := NewRGB(w, h)
		for y := 0; y < h; y++ {
			copy(dst.Row(y), src.Row(y))
		}
		return dst
	}
	if w < src.W && h < src.H && src.W%w == 0 && src.H%h == 0 {
		return shrinkInt(src, w, h, src.W/w, src.H/h)
	}
	dst := NewRGB(w, h)
	xs, xe := spans(src.W, w)
	ys, ye := spans(src.H, h)
	acc := make([]uint32, 3*w)
	for dy := 0; dy < h; dy++ {
		clear(acc)
		for sy := ys[dy]; sy < ye[dy]; sy++ {
			row := src.Row(sy)
			for dx := 0; dx < w; dx++ {
				var r, g, b uint32
				for sx := xs[dx]; sx < xe[dx]; sx++ {
					r += uint32(row[3*sx])
					g += uint32(row[3*sx+1])
					b += uint32(row[3*sx+2])
				}
				acc[3*dx] += r
				acc[3*dx+1] += g
				acc[3*dx+2] += b
			}
		}
		out := dst.Row(dy)
		rows := uint32(ye[dy] - ys[dy])
		for dx := 0; dx < w; dx++ {
			n := rows * uint32(xe[dx]-xs[dx])
			out[3*dx] = uint8((acc[3*dx] + n/2) / n)
			out[3*dx+1] = uint8((acc[3*dx+1] + n/2) / n)
			out[3*dx+2] = uint8((acc[3*dx+2] + n/2) / n)
		}
	}
	return dst
}

// spans maps each of n destination cells to the half-open source range
// [start, end) it covers (at least one source pixel).
func spans(src, n int) (start, end []int) {
	start = make([]int, n)
	end = make([]int, n)
	for i := 0; i < n; i++ {
		s := i * src / n
		e := (i + 1) * src / n
		if e <= s {
			s = min(i*src/n, src-1)
			e = s + 1
		}
		start[i], end[i] = s, e
	}
	return start, end
}

// Fit scales src down (never up), keeping its aspect ratio, so that it fits
// in maxW×maxH. It returns src itself when it already fits.
func Fit(src *RGB, maxW, maxH int) *RGB {
	if src.W <= maxW && src.H <= maxH {
		return src
	}
	w, h := maxW, src.H*maxW/src.W
	if h > maxH {
		w, h = src.W*maxH/src.H, maxH
	}
	return Resize(src, max(w, 1), max(h, 1))
}

// shrinkInt is Resize for exact integer factors (1280x720 -> 640x360 and
// the like): fixed-size boxes, no span tables.
func shrinkInt(src *RGB, w, h, fx, fy int) *RGB {
	dst := NewRGB(w, h)
	acc := make([]uint32, 3*w)
	n := uint32(fx * fy)
	for dy := 0; dy < h; dy++ {
		clear(acc)
		for k := 0; k < fy; k++ {
			row := src.Row(dy*fy + k)
			i := 0
			for dx := 0; dx < w; dx++ {
				var r, g, b uint32
				for j := 0; j < fx; j++ {
					p := row[i : i+3 : i+3]
					r += uint32(p[0])
					g += uint32(p[1])
					b += uint32(p[2])
					i += 3
				}
				a := acc[3*dx : 3*dx+3 : 3*dx+3]
				a[0] += r
				a[1] += g
				a[2] += b
			}
		}
		out := dst.Row(dy)
		for i, v := range acc {
			out[i] = uint8((v + n/2) / n)
		}
	}
	return dst
}
