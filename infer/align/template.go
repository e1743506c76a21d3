package align

import (
	"fmt"

	"github.com/facegate/facegate/infer/manifest"
)

// Template is where an embedder wants the keypoints in its Size×Size chip,
// in continuous chip coordinates (see the package doc), with one name per
// point (the detector's keypoint names, e.g. "right_eye").
type Template struct {
	Size   int
	Points []Point
	Names  []string
}

// TemplateFrom takes an embedder's template from its manifest. The
// manifest's points already include the padding and are used as they are.
func TemplateFrom(a *manifest.Alignment) (Template, error) {
	if a == nil {
		return Template{}, fmt.Errorf("align: the model has no alignment template")
	}
	t := Template{Size: a.Size, Points: append([]Point(nil), a.Points...), Names: append([]string(nil), a.PointKeys...)}
	return t, t.Check()
}

// Check reports an unusable template.
func (t Template) Check() error {
	if t.Size <= 0 || t.Size > 4096 {
		return fmt.Errorf("align: template size %d is not in 1..4096", t.Size)
	}
	if len(t.Points) < 2 {
		return fmt.Errorf("align: template has %d points, need at least 2", len(t.Points))
	}
	if len(t.Names) != 0 && len(t.Names) != len(t.Points) {
		return fmt.Errorf("align: template has %d points but %d names", len(t.Points), len(t.Names))
	}
	for i, p := range t.Points {
		if !finite(p[0]) || !finite(p[1]) {
			return fmt.Errorf("align: template point %d is %v", i, p)
		}
	}
	return nil
}

// Offset returns a copy of t with every point moved by (d, d): Offset(0.5)
// converts a template measured in dlib's integer pixel-centre convention
// into the continuous coordinates align uses.
func (t Template) Offset(d float64) Template {
	out := t
	out.Points = make([]Point, len(t.Points))
	for i, p := range t.Points {
		out.Points[i] = Point{p[0] + d, p[1] + d}
	}
	return out
}

// Select picks, in template order, the keypoints the template needs from
// a detector's keypoints and their names.
func (t Template) Select(keypoints []Point, names []string) ([]Point, error) {
	if len(keypoints) != len(names) {
		return nil, fmt.Errorf("align: %d keypoints but %d names", len(keypoints), len(names))
	}
	if len(t.Names) != len(t.Points) {
		return nil, fmt.Errorf("align: template points have no names")
	}
	out := make([]Point, len(t.Names))
	for i, want := range t.Names {
		found := false
		for j, n := range names {
			if n == want {
				out[i], found = keypoints[j], true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("align: the detector has no %q keypoint (it has %v)", want, names)
		}
	}
	return out, nil
}
