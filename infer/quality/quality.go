package quality

import (
	"errors"
	"fmt"
	"image"
	"math"
	"strings"

	"github.com/facegate/facegate/infer/imageio"
)

// ErrInput is wrapped by errors about unusable input (not about faces that
// fail checks: those are reported in Report.Failures).
var ErrInput = errors.New("quality: bad input")

// Box is a face box in continuous pixel coordinates.
type Box struct{ X0, Y0, X1, Y1 float64 }

// Keypoints are the face landmarks pose and size are estimated from, in
// continuous pixel coordinates. "Right" is the subject's right (the image's
// left for an unmirrored frontal face), as the detector names them.
type Keypoints struct {
	RightEye, LeftEye, Nose, Mouth [2]float64
}

// Keypoint names KeypointsFrom looks for (the detector manifest's
// keypoint_names).
const (
	NameRightEye = "right_eye"
	NameLeftEye  = "left_eye"
	NameNose     = "nose_tip"
	NameMouth    = "mouth_center"
)

// KeypointsFrom picks the landmarks by name from a detector's keypoints.
func KeypointsFrom(points [][2]float64, names []string) (Keypoints, error) {
	if len(points) != len(names) {
		return Keypoints{}, fmt.Errorf("%w: %d keypoints but %d names", ErrInput, len(points), len(names))
	}
	var k Keypoints
	for _, want := range []struct {
		name string
		dst  *[2]float64
	}{{NameRightEye, &k.RightEye}, {NameLeftEye, &k.LeftEye}, {NameNose, &k.Nose}, {NameMouth, &k.Mouth}} {
		found := false
		for i, n := range names {
			if n == want.name {
				*want.dst, found = points[i], true
				break
			}
		}
		if !found {
			return Keypoints{}, fmt.Errorf("%w: no %q keypoint among %v", ErrInput, want.name, names)
		}
	}
	return k, nil
}

// Face is what Assess looks at.
type Face struct {
	Box       Box
	Keypoints Keypoints
	// Chip is the face's aligned chip (align.CropRGB); when set, sharpness
	// is measured on it (comparable across face sizes), else on the box.
	Chip *imageio.RGB
}

// Thresholds decide which checks a face fails. A zero limit disables its
// check.
type Thresholds struct {
	MinInterOcular float64 // pixels between the eye centres in the frame
	MinSharpness   float64 // variance of the Laplacian, see the package doc
	MaxYaw         float64 // degrees, absolute
	MaxPitch       float64 // degrees, absolute
	MaxRoll        float64 // degrees, absolute
	MinMeanLuma    float64 // 0..255
	MaxMeanLuma    float64 // 0..255
	MaxClipped     float64 // fraction of face-box pixels crushed (<=5) or blown (>=250), each
}

// DefaultThresholds suit a door camera (a face filling a tenth of a 720p
// or 1080p frame, indoor light). They are starting points: tune them on
// the site's own frames.
func DefaultThresholds() Thresholds {
	return Thresholds{
		MinInterOcular: 40,
		MinSharpness:   DefaultMinSharpness,
		MaxYaw:         30,
		MaxPitch:       25,
		MaxRoll:        30,
		MinMeanLuma:    50,
		MaxMeanLuma:    210,
		MaxClipped:     0.15,
	}
}

// Validate rejects thresholds that make no sense.
func (t Thresholds) Validate() error {
	var errs []string
	for _, v := range []struct {
		name string
		val  float64
		max  float64
	}{
		{"MinInterOcular", t.MinInterOcular, math.Inf(1)}, {"MinSharpness", t.MinSharpness, math.Inf(1)},
		{"MaxYaw", t.MaxYaw, 90}, {"MaxPitch", t.MaxPitch, 90}, {"MaxRoll", t.MaxRoll, 180},
		{"MinMeanLuma", t.MinMeanLuma, 255}, {"MaxMeanLuma", t.MaxMeanLuma, 255}, {"MaxClipped", t.MaxClipped, 1},
	} {
		if !(v.val >= 0 && v.val <= v.max) {
			errs = append(errs, fmt.Sprintf("%s = %v is not in [0, %v]", v.name, v.val, v.max))
		}
	}
	if t.MaxMeanLuma > 0 && t.MinMeanLuma > t.MaxMeanLuma {
		errs = append(errs, fmt.Sprintf("MinMeanLuma %v > MaxMeanLuma %v", t.MinMeanLuma, t.MaxMeanLuma))
	}
	if len(errs) > 0 {
		return fmt.Errorf("quality thresholds: %s", strings.Join(errs, "; "))
	}
	return nil
}

// The checks a face can fail (Report.Failures).
const (
	CheckInterOcular = "inter_ocular"
	CheckSharpness   = "sharpness"
	CheckYaw         = "yaw"
	CheckPitch       = "pitch"
	CheckRoll        = "roll"
	CheckDark        = "too_dark"
	CheckBright      = "too_bright"
	CheckCrushed     = "crushed_shadows"
	CheckBlown       = "blown_highlights"
	CheckOutside     = "box_outside_image"
)

// Report holds every measure of one face and the checks it failed.
type Report struct {
	InterOcular float64 // pixels
	Sharpness   float64 // variance of the Laplacian
	// SharpnessOn is "chip" or "box": where Sharpness was measured.
	SharpnessOn      string
	Yaw, Pitch, Roll float64 // degrees
	MeanLuma         float64 // 0..255 over the face box
	Crushed, Blown   float64 // fractions of face-box pixels <= 5 and >= 250
	// Failures lists the checks failed (Check* names), in a fixed order.
	Failures []string
	// OK is true when no check failed.
	OK bool
}

// String summarises the report in one line for logs.
func (r Report) String() string {
	s := fmt.Sprintf("iod=%.1fpx sharpness=%.1f(%s) yaw=%.1f pitch=%.1f roll=%.1f luma=%.1f crushed=%.3f blown=%.3f",
		r.InterOcular, r.Sharpness, r.SharpnessOn, r.Yaw, r.Pitch, r.Roll, r.MeanLuma, r.Crushed, r.Blown)
	if r.OK {
		return s + " ok"
	}
	return s + " failed=" + strings.Join(r.Failures, ",")
}

// Assess measures one face in img against th. It returns an error only for
// unusable input (broken image, non-finite keypoints or box, invalid
// thresholds); a face that fails checks comes back with OK false.
func Assess(img *imageio.RGB, f Face, th Thresholds) (Report, error) {
	if err := img.Check(); err != nil {
		return Report{}, fmt.Errorf("%w: %v", ErrInput, err)
	}
	if err := th.Validate(); err != nil {
		return Report{}, fmt.Errorf("%w: %v", ErrInput, err)
	}
	for _, v := range []float64{f.Box.X0, f.Box.Y0, f.Box.X1, f.Box.Y1,
		f.Keypoints.RightEye[0], f.Keypoints.RightEye[1], f.Keypoints.LeftEye[0], f.Keypoints.LeftEye[1],
		f.Keypoints.Nose[0], f.Keypoints.Nose[1], f.Keypoints.Mouth[0], f.Keypoints.Mouth[1]} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return Report{}, fmt.Errorf("%w: non-finite box or keypoint %+v", ErrInput, f)
		}
	}
	var r Report
	fail := func(check string) { r.Failures = append(r.Failures, check) }

	pose := EstimatePose(f.Keypoints)
	r.InterOcular, r.Yaw, r.Pitch, r.Roll = pose.InterOcular, pose.Yaw, pose.Pitch, pose.Roll

	rect := image.Rect(int(math.Floor(f.Box.X0)), int(math.Floor(f.Box.Y0)), int(math.Ceil(f.Box.X1)), int(math.Ceil(f.Box.Y1))).Intersect(img.Bounds())
	if rect.Empty() {
		fail(CheckOutside)
	} else {
		r.MeanLuma, r.Crushed, r.Blown = Exposure(img, rect)
	}
	switch {
	case f.Chip != nil:
		if err := f.Chip.Check(); err != nil {
			return Report{}, fmt.Errorf("%w: chip: %v", ErrInput, err)
		}
		r.Sharpness, r.SharpnessOn = SharpnessOfChip(f.Chip), "chip"
	case !rect.Empty():
		r.SharpnessOn = "box"
		face, err := imageio.Resize(img.Crop(rect), boxSize, boxSize)
		if err != nil {
			return Report{}, fmt.Errorf("quality: resample face box: %w", err)
		}
		r.Sharpness = Sharpness(face, face.Bounds())
	}

	if th.MinInterOcular > 0 && r.InterOcular < th.MinInterOcular {
		fail(CheckInterOcular)
	}
	if th.MinSharpness > 0 && r.SharpnessOn != "" && r.Sharpness < th.MinSharpness {
		fail(CheckSharpness)
	}
	if th.MaxYaw > 0 && math.Abs(r.Yaw) > th.MaxYaw {
		fail(CheckYaw)
	}
	if th.MaxPitch > 0 && math.Abs(r.Pitch) > th.MaxPitch {
		fail(CheckPitch)
	}
	if th.MaxRoll > 0 && math.Abs(r.Roll) > th.MaxRoll {
		fail(CheckRoll)
	}
	if !rect.Empty() {
		if th.MinMeanLuma > 0 && r.MeanLuma < th.MinMeanLuma {
			fail(CheckDark)
		}
		if th.MaxMeanLuma > 0 && r.MeanLuma > th.MaxMeanLuma {
			fail(CheckBright)
		}
		if th.MaxClipped > 0 && r.Crushed > th.MaxClipped {
			fail(CheckCrushed)
		}
		if th.MaxClipped > 0 && r.Blown > th.MaxClipped {
			fail(CheckBlown)
		}
	}
	r.OK = len(r.Failures) == 0
	return r, nil
}

// boxSize is the side the face box is resampled to for sharpness when no
// aligned chip is given.
const boxSize = 112
