package infer

import (
	"errors"
	"fmt"
	"math"

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
		sel.Chosen = 0
	}
	sel.Subject = sel.Faces[sel.Chosen]
	return sel, nil
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
// offline study (`facegate eval -enrollment`): detect, select the subject
// (SelectSubject with choice), measure its quality, judge it with lim and
// embed it. With embedAll every face is embedded (the study's bystander
// check), else only the subject. A photo refused for quality is still
// embedded, so that the study can show what refusing it saved; the caller
// decides. Errors: ErrNoFace, ErrAmbiguous, ErrNoSuchFace (the selection
// is filled in), or a model error.
func (p *Pipeline) AssessEnrollment(img *imageio.RGB, choice SubjectChoice, lim quality.EnrollmentLimits, embedAll bool) (EnrollmentPhoto, error) {
	var out EnrollmentPhoto
	faces, err := p.Detect(img)
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
