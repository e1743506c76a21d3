package quality

import (
	"image"
	"math"

	"github.com/facegate/facegate/infer/imageio"
)

// DefaultMinSharpness is the default sharpness threshold for aligned
// chips (see DefaultThresholds).
const DefaultMinSharpness = 20

// luma is BT.601 luma in 0..255.
func luma(p []uint8) float64 {
	return 0.299*float64(p[0]) + 0.587*float64(p[1]) + 0.114*float64(p[2])
}

// Sharpness is the variance of the 3x3 Laplacian of the luma over the
// pixels of r (clipped to img) whose 4 neighbours are inside r; 0 for
// regions smaller than 3x3.
func Sharpness(img *imageio.RGB, r image.Rectangle) float64 {
	r = r.Intersect(img.Bounds())
	if r.Dx() < 3 || r.Dy() < 3 {
		return 0
	}
	w := r.Dx()
	// Three rolling rows of luma.
	rows := make([]float64, 3*w)
	fill := func(dst []float64, y int) {
		for x := 0; x < w; x++ {
			dst[x] = luma(img.Pix[img.Offset(r.Min.X+x, y):])
		}
	}
	fill(rows[0:w], r.Min.Y)
	fill(rows[w:2*w], r.Min.Y+1)
	var sum, sum2 float64
	n := 0
	for y := r.Min.Y + 1; y < r.Max.Y-1; y++ {
		k := y - r.Min.Y
		up, mid, down := rows[((k-1)%3)*w:][:w], rows[(k%3)*w:][:w], rows[((k+1)%3)*w:][:w]
		fill(down, y+1)
		for x := 1; x < w-1; x++ {
			l := up[x] + down[x] + mid[x-1] + mid[x+1] - 4*mid[x]
			sum += l
			sum2 += l * l
			n++
		}
	}
	mean := sum / float64(n)
	return math.Max(0, sum2/float64(n)-mean*mean)
}

// SharpnessOfChip is Sharpness over the central 60% (each way) of an
// aligned chip, where the face is.
func SharpnessOfChip(chip *imageio.RGB) float64 {
	mx, my := chip.W/5, chip.H/5
	return Sharpness(chip, image.Rect(mx, my, chip.W-mx, chip.H-my))
}

// Exposure returns the mean luma of r and the fractions of its pixels with
// luma <= 5 (crushed) and >= 250 (blown).
func Exposure(img *imageio.RGB, r image.Rectangle) (mean, crushed, blown float64) {
	r = r.Intersect(img.Bounds())
	if r.Empty() {
		return 0, 0, 0
	}
	var sum float64
	var dark, bright int
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := img.Pix[img.Offset(r.Min.X, y):img.Offset(r.Max.X, y)]
		for i := 0; i < len(row); i += 3 {
			l := luma(row[i:])
			sum += l
			if l <= 5 {
				dark++
			} else if l >= 250 {
				bright++
			}
		}
	}
	n := float64(r.Dx() * r.Dy())
	return sum / n, float64(dark) / n, float64(bright) / n
}

// Mean-face model in units of the inter-ocular distance (package doc).
const (
	eyeHalf    = 0.5  // half the IOD
	noseDown   = 0.56 // nose tip below the eye line
	noseDepth  = 0.45 // nose tip in front of the eyes
	mouthDown  = 1.14 // mouth centre below the eye line
	mouthDepth = 0.10 // mouth centre in front of the eyes

	minNoseDepth = 0.15 // floor of the pitched nose depth for yaw
)

// Pose is the face geometry estimated from keypoints.
type Pose struct {
	InterOcular      float64 // pixels
	Yaw, Pitch, Roll float64 // degrees, see the package doc for signs
}

// EstimatePose estimates roll, yaw and pitch from the eyes, nose and mouth
// with the mean-face model of the package doc. Coincident eyes give
// InterOcular 0 and zero angles; a mouth that is not below the eye line
// gives Pitch 90.
func EstimatePose(k Keypoints) Pose {
	dx, dy := k.LeftEye[0]-k.RightEye[0], k.LeftEye[1]-k.RightEye[1]
	iod := math.Hypot(dx, dy)
	p := Pose{InterOcular: iod}
	if iod == 0 {
		return p
	}
	p.Roll = math.Atan2(dy, dx) * 180 / math.Pi
	ex, ey := dx/iod, dy/iod // along the eye line
	px, py := -ey, ex        // down the face
	mx, my := (k.RightEye[0]+k.LeftEye[0])/2, (k.RightEye[1]+k.LeftEye[1])/2
	nx, ny := k.Nose[0]-mx, k.Nose[1]-my
	noseH := nx*px + ny*py
	mouthH := (k.Mouth[0]-mx)*px + (k.Mouth[1]-my)*py
	if mouthH <= 0 { // mouth not below the eyes: no face geometry
		p.Pitch = 90
		return p
	}
	r := noseH / mouthH
	pitch := math.Atan2(r*mouthDown-noseDown, noseDepth-r*mouthDepth)
	p.Pitch = pitch * 180 / math.Pi
	// After pitching, the nose tip is this far in front of the eyes; it
	// sets how far a yaw moves it sideways. Steep pitches bring it near
	// the eyes' depth, where yaw cannot be read from it: floor it.
	depth := math.Max(minNoseDepth, noseDepth*math.Cos(pitch)-noseDown*math.Sin(pitch))
	side := (nx*ex + ny*ey) / (iod / 2)
	p.Yaw = math.Atan(side*eyeHalf/depth) * 180 / math.Pi
	return p
}
