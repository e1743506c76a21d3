package infer

import (
	"errors"
	"fmt"
	"image"
	"math"
	"sort"

	"github.com/facegate/facegate/infer/detect"
	"github.com/facegate/facegate/infer/imageio"
	"github.com/facegate/facegate/infer/quality"
)

// Subject selection in an enrollment photo: whose face is the photo about?
//
// A news photo, an HR portrait or a badge photo is centred on its subject;
// bystanders are smaller, off centre or both. Each face gets a prominence,
// its box area weighted by how near its centre is to the image centre:
//
//	prominence = area × (1 − d)²,  d = |face centre − image centre| / (half the image diagonal)
//
// The most prominent face is the subject unless another face comes within
// AmbiguousRatio of its prominence: then two faces of similar size and
// position compete, and choosing between them is a person's call
// (ErrAmbiguous, with every face listed, so that a requester can name one
// by index or box).

// AmbiguousRatio: a second face whose prominence is at least this share of
// the first's makes the photo ambiguous. Chosen on ../shared/data (see
// docs/enrollment.md): couples and group photos are ambiguous, LFW photos
// with a bystander in the background are not.
const AmbiguousRatio = 0.5

// ErrAmbiguous is returned by SelectSubject when two or more faces are
// similar in size and position.
var ErrAmbiguous = errors.New("several faces of similar size and position")

// ErrOffCentre is returned by SelectSubject when the automatically chosen
// face sits so far to one side that a face of the same size, mirrored
// through the image centre, would not overlap it: there is room for an
// equally prominent face the detector missed (a couple photo where only
// one face was found), so the choice is left to a person.
var ErrOffCentre = errors.New("the face found is off centre")

// ErrNoSuchFace is returned when a requested face (index or box) is not
// among the faces found.
var ErrNoSuchFace = errors.New("the requested face is not among the faces found")

// Prominence is a face's claim to be the photo's subject (see above).
func Prominence(f *Face, w, h int) float64 {
	cx, cy := float64(w)/2, float64(h)/2
	fx, fy := (f.Box.X0+f.Box.X1)/2, (f.Box.Y0+f.Box.Y1)/2
	half := math.Hypot(cx, cy)
	if half == 0 {
		return 0
	}
	d := math.Min(1, math.Hypot(fx-cx, fy-cy)/half)
	return f.Box.Area() * (1 - d) * (1 - d)
}

// SubjectChoice names the face a requester chose: Index into the faces as
// listed by SelectSubject (ranked by prominence), or a Box that the chosen
// face overlaps best. A zero SubjectChoice (Index < 0 or Box empty) means
// automatic selection.
type SubjectChoice struct {
	Index int // ≥ 0: this face of the ranked list
	Box   [4]float64
	ByBox bool
}

// Auto is the automatic SubjectChoice.
var Auto = SubjectChoice{Index: -1}

// SubjectSelection is the outcome of SelectSubject.
type SubjectSelection struct {
	// Faces are all faces found, most prominent first.
	Faces []*Face
	// Prominence of each face, in the same order.
	Prominence []float64
	// Subject is the chosen face (nil with an error).
	Subject *Face
	// Chosen is the subject's index in Faces (-1 with an error).
	Chosen int
}

// SelectSubject ranks faces by prominence and picks the subject: the face
// the choice names, else the most prominent one unless another is within
// AmbiguousRatio of it. Errors: ErrNoFace, ErrAmbiguous, ErrNoSuchFace; the
// selection's Faces are filled in every case.
func SelectSubject(faces []Face, w, h int, choice SubjectChoice) (SubjectSelection, error) {
	sel := SubjectSelection{Chosen: -1}
	for i := range faces {
		sel.Faces = append(sel.Faces, &faces[i])
	}
	prom := make(map[*Face]float64, len(faces))
	for _, f := range sel.Faces {
		prom[f] = Prominence(f, w, h)
	}
	// Stable insertion sort: detector order breaks ties.
	for i := 1; i < len(sel.Faces); i++ {
		for j := i; j > 0 && prom[sel.Faces[j]] > prom[sel.Faces[j-1]]; j-- {
			sel.Faces[j], sel.Faces[j-1] = sel.Faces[j-1], sel.Faces[j]
		}
	}
	for _, f := range sel.Faces {
		sel.Prominence = append(sel.Prominence, prom[f])
	}
	if len(faces) == 0 {
		return sel, ErrNoFace
	}
	switch {
	case choice.ByBox:
		best, bestIoU := -1, 0.0
		for i, f := range sel.Faces {
			if v := iou(f.Box.X0, f.Box.Y0, f.Box.X1, f.Box.Y1, choice.Box); v > bestIoU {
				best, bestIoU = i, v
			}
		}
		if best < 0 || bestIoU < 0.3 {
			return sel, fmt.Errorf("%w: no face overlaps box %v (best overlap %.2f, need 0.30)", ErrNoSuchFace, choice.Box, bestIoU)
		}
		sel.Chosen = best
	case choice.Index >= 0:
		if choice.Index >= len(sel.Faces) {
			return sel, fmt.Errorf("%w: face %d asked, %d found", ErrNoSuchFace, choice.Index, len(sel.Faces))
		}
		sel.Chosen = choice.Index
	default:
		if len(sel.Faces) > 1 && sel.Prominence[1] >= AmbiguousRatio*sel.Prominence[0] {
			return sel, fmt.Errorf("%w: %d faces found, the second %.0f %% as prominent as the first", ErrAmbiguous, len(sel.Faces), 100*sel.Prominence[1]/math.Max(sel.Prominence[0], 1e-9))
		}
		if i, why := rival(sel.Faces); i > 0 {
			return sel, fmt.Errorf("%w: %s", ErrAmbiguous, why)
		}
		if offCentre(sel.Faces[0], w) {
			f := sel.Faces[0]
			return sel, fmt.Errorf("%w: its centre is %.0f px from the image's centre, more than half its width (%.0f px): another face as prominent may be beside it unseen",
				ErrOffCentre, math.Abs((f.Box.X0+f.Box.X1)/2-float64(w)/2), f.Box.W())
		}
		sel.Chosen = 0
	}
	sel.Subject = sel.Faces[sel.Chosen]
	return sel, nil
}

// rival is the index of the first face, after the most prominent one,
// that makes the photo ambiguous whatever its position, with why, or -1:
//   - a face surely detected (score ≥ SureScore) at least AmbiguousRatio
//     of the most prominent face's area when the detector doubts that one:
//     position makes a face prominent, but a doubtful detection near the
//     centre (a face half cut by the photo's edge, a pattern where two
//     pictures meet) must not outrank a clear face of similar size;
//   - a face surely detected and at least SameSize of its area: a group
//     photo of people of one size is nobody's portrait, whoever stands in
//     the middle.
//
// Whose photo it is, a person then decides.
func rival(faces []*Face) (int, string) {
	s := faces[0]
	for i := 1; i < len(faces); i++ {
		f := faces[i]
		if f.Score < SureScore {
			continue
		}
		switch ratio := f.Box.Area() / math.Max(s.Box.Area(), 1e-9); {
		case ratio >= SameSize:
			return i, fmt.Sprintf("face %d is as large as the most prominent face (%.0f %% of its area)", i, 100*ratio)
		case ratio >= AmbiguousRatio && s.Score < SureScore:
			return i, fmt.Sprintf("face %d is %.0f %% the size of the most prominent face, which the detector doubts (score %.2f), and is surely a face (%.2f)",
				i, 100*ratio, s.Score, f.Score)
		}
	}
	return -1, ""
}

// SameSize is the area ratio from which two surely detected faces are
// of one size (about 90 % of the side).
const SameSize = 0.8

// SureScore is the detection score from which a face counts as surely
// detected: the detector-confidence level from which an enrollment photo
// is accepted without a warning (quality.DefaultEnrollmentLimits'
// AcceptDetScore). On LFW photos templates from faces detected below it
// match their person's other photos markedly less often
// (docs/enrollment.md).
const SureScore = 0.88

// offCentre says whether f's box, mirrored left-right through the centre
// of an image w pixels wide, misses the box itself: the mirrored position
// could hold a face of the same size and prominence. Only the horizontal
// offset counts: couples stand side by side, while a portrait's face sits
// above the image centre by design.
func offCentre(f *Face, w int) bool {
	return math.Abs((f.Box.X0+f.Box.X1)/2-float64(w)/2) > f.Box.W()/2
}

// iou is the intersection over union of box (x0, y0, x1, y1) and b.
func iou(x0, y0, x1, y1 float64, b [4]float64) float64 {
	ix := math.Max(0, math.Min(x1, b[2])-math.Max(x0, b[0]))
	iy := math.Max(0, math.Min(y1, b[3])-math.Max(y0, b[1]))
	inter := ix * iy
	union := (x1-x0)*(y1-y0) + (b[2]-b[0])*(b[3]-b[1]) - inter
	if union <= 0 {
		return 0
	}
	return inter / union
}

// EnrollmentPhoto is one enrollment photo run through the enrollment
// path: every face found, the subject chosen, its quality judged and its
// embedding.
type EnrollmentPhoto struct {
	SubjectSelection
	Quality   quality.Report
	Judgement quality.EnrollmentJudgement
}

// AssessEnrollment is the enrollment path shared by the gate and the
// offline study (`facegate eval -enrollment`): detect thoroughly
// (DetectEnrollment), select the subject
// (SelectSubject with choice), measure its quality, judge it with lim and
// embed it. With embedAll every face is embedded (the study's bystander
// check), else only the subject. A photo refused for quality is still
// embedded, so that the study can show what refusing it saved; the caller
// decides. Errors: ErrNoFace, ErrAmbiguous, ErrNoSuchFace (the selection
// is filled in), or a model error.
func (p *Pipeline) AssessEnrollment(img *imageio.RGB, choice SubjectChoice, lim quality.EnrollmentLimits, embedAll bool) (EnrollmentPhoto, error) {
	var out EnrollmentPhoto
	faces, err := p.DetectEnrollment(img)
	if err != nil {
		return out, err
	}
	out.SubjectSelection, err = SelectSubject(faces, img.W, img.H, choice)
	if err != nil {
		return out, err
	}
	if out.Quality, err = p.Assess(img, out.Subject, quality.Thresholds{}); err != nil {
		return out, err
	}
	out.Judgement = lim.Judge(out.Quality, out.Subject.Score)
	embed := []*Face{out.Subject}
	if embedAll {
		embed = out.Faces
	}
	if err := p.Embed(img, embed); err != nil {
		return out, err
	}
	return out, nil
}

// DetectEnrollment is the thorough detection of an enrollment photo: a
// live frame gets one detector pass, a photo that a template is built from
// gets more, because a face the detector misses can make another person
// the subject. Besides the whole image (Detect, with its pad retry), a
// photo whose long side is at least TileAspect times its short side is
// searched in square tiles of the short side's size, overlapping by half
// along the long side. BlazeFace sees the whole image letterboxed into its
// square input, so in a wide photo every face shrinks by the aspect ratio:
// two portraits side by side lose half their pixels, and the detector
// misses one now and then. A tile shows each face at the scale of a single
// portrait. Tile detections that touch an inner tile edge (a face cut in
// two, whole in the next tile) are dropped; the rest are merged with the
// whole image's: a face found by several passes keeps its most confident
// box.
func (p *Pipeline) DetectEnrollment(img *imageio.RGB) ([]Face, error) {
	faces, err := p.Detect(img)
	if err != nil {
		return nil, err
	}
	tiles := enrollmentTiles(img.W, img.H)
	if len(tiles) == 0 {
		return faces, nil
	}
	all := faces
	for _, r := range tiles {
		tf, err := p.Detect(img.Crop(r))
		if err != nil {
			return nil, fmt.Errorf("detect tile %v: %w", r, err)
		}
		for _, f := range tf {
			f.Detection = shiftXY(f.Detection, float64(r.Min.X), float64(r.Min.Y))
			if touchesInnerEdge(f.Box, r, img.W, img.H) {
				continue
			}
			all = append(all, f)
		}
	}
	// One face found by several passes keeps its most confident box.
	sort.SliceStable(all, func(i, j int) bool { return all[i].Score > all[j].Score })
	var out []Face
	for _, f := range all {
		dup := false
		for _, k := range out {
			if sameFace(f.Box, k.Box) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, f)
		}
	}
	return out, nil
}

// TileAspect is the aspect ratio (long side over short side) from which
// DetectEnrollment searches a photo in tiles as well.
const TileAspect = 1.25

// enrollmentTiles are the square tiles of the short side's size, stepping
// by half of it along the long side, the last flush with the edge; none
// when the image is nearly square.
func enrollmentTiles(w, h int) []image.Rectangle {
	long, short := max(w, h), min(w, h)
	if short <= 0 || float64(long) < TileAspect*float64(short) {
		return nil
	}
	var out []image.Rectangle
	step := max(1, short/2)
	for at := 0; ; at += step {
		at = min(at, long-short)
		if w >= h {
			out = append(out, image.Rect(at, 0, at+short, h))
		} else {
			out = append(out, image.Rect(0, at, w, at+short))
		}
		if at == long-short {
			return out
		}
	}
}

// touchesInnerEdge says whether box b reaches within 2 pixels of an edge
// of tile r that is not an edge of the w x h image.
func touchesInnerEdge(b detect.Box, r image.Rectangle, w, h int) bool {
	const near = 2
	return (r.Min.X > 0 && b.X0 <= float64(r.Min.X)+near) ||
		(r.Min.Y > 0 && b.Y0 <= float64(r.Min.Y)+near) ||
		(r.Max.X < w && b.X1 >= float64(r.Max.X)-near) ||
		(r.Max.Y < h && b.Y1 >= float64(r.Max.Y)-near)
}

// sameFace says whether two boxes are one face found twice: they overlap
// by IoU 0.3, or half of the smaller lies inside the larger.
func sameFace(a, b detect.Box) bool {
	if detect.IoU(a, b) > 0.3 {
		return true
	}
	ix := math.Max(0, math.Min(a.X1, b.X1)-math.Max(a.X0, b.X0))
	iy := math.Max(0, math.Min(a.Y1, b.Y1)-math.Max(a.Y0, b.Y0))
	small := math.Min(a.Area(), b.Area())
	return small > 0 && ix*iy >= 0.5*small
}

// shiftXY moves a detection by (dx, dy) pixels.
func shiftXY(d detect.Detection, dx, dy float64) detect.Detection {
	d.Box = detect.Box{X0: d.Box.X0 + dx, Y0: d.Box.Y0 + dy, X1: d.Box.X1 + dx, Y1: d.Box.Y1 + dy}
	kp := make([]detect.Point, len(d.Keypoints))
	for i, k := range d.Keypoints {
		kp[i] = detect.Point{X: k.X + dx, Y: k.Y + dy}
	}
	d.Keypoints = kp
	return d
}
