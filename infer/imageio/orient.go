package imageio

// Orient returns img transformed from EXIF orientation o into upright
// (orientation 1); o outside 2..8 returns img itself. For o = 5..8 the
// result is H×W.
//
//	1 as stored            5 transpose
//	2 mirror horizontally  6 rotate 90° clockwise
//	3 rotate 180°          7 transverse
//	4 mirror vertically    8 rotate 90° counter-clockwise
func Orient(img *RGB, o int) *RGB {
	if o < 2 || o > 8 {
		return img
	}
	w, h := img.W, img.H
	ow, oh := w, h
	if o >= 5 {
		ow, oh = h, w
	}
	out := NewRGB(ow, oh)
	// For output pixel (x, y) the source is (sx0 + x*dxx + y*dxy, sy0 + x*dyx + y*dyy).
	var sx0, sy0, dxx, dxy, dyx, dyy int
	switch o {
	case 2:
		sx0, dxx, dyy = w-1, -1, 1
	case 3:
		sx0, sy0, dxx, dyy = w-1, h-1, -1, -1
	case 4:
		sy0, dxx, dyy = h-1, 1, -1
	case 5: // out(x,y) = src(y, x)
		dxy, dyx = 1, 1
	case 6: // out(x,y) = src(y, h-1-x)
		sy0, dxy, dyx = h-1, 1, -1
	case 7: // out(x,y) = src(w-1-y, h-1-x)
		sx0, sy0, dxy, dyx = w-1, h-1, -1, -1
	case 8: // out(x,y) = src(w-1-y, x)
		sx0, dxy, dyx = w-1, -1, 1
	}
	step := 3 * (dxx + dyx*w) // source offset change per output x
	for y := 0; y < oh; y++ {
		si := 3 * ((sy0+y*dyy)*w + sx0 + y*dxy)
		row := out.Pix[3*y*ow : 3*(y+1)*ow]
		for x := 0; x < 3*ow; x += 3 {
			row[x], row[x+1], row[x+2] = img.Pix[si], img.Pix[si+1], img.Pix[si+2]
			si += step
		}
	}
	return out
}
