package infer

import (
	"errors"
	"image"
	"math"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/facegate/facegate/infer/detect"
	"github.com/facegate/facegate/infer/imageio"
	"github.com/facegate/facegate/infer/quality"
)

func box(x0, y0, x1, y1 float64) Face {
	return Face{Detection: detect.Detection{Box: detect.Box{X0: x0, Y0: y0, X1: x1, Y1: y1}}}
}

func scored(f Face, s float64) Face { f.Score = s; return f }

func TestSelectSubject(t *testing.T) {
	const w, h = 250, 250
	centred := box(70, 70, 180, 180)  // the LFW subject, ~110 px
	bystander := box(0, 10, 60, 80)   // smaller, at the edge
	twin := box(130, 60, 240, 170)    // a second person as big, beside the first
	leftTwin := box(10, 60, 120, 170) // ... and the first of the couple
	for _, c := range []struct {
		name   string
		faces  []Face
		choice SubjectChoice
		want   Face
		err    error
	}{
		{"none", nil, Auto, Face{}, ErrNoFace},
		{"one", []Face{centred}, Auto, centred, nil},
		{"bystander listed first", []Face{bystander, centred}, Auto, centred, nil},
		{"couple", []Face{leftTwin, twin}, Auto, Face{}, ErrAmbiguous},
		{"couple, face 1 chosen", []Face{leftTwin, twin}, SubjectChoice{Index: 1}, twin, nil},
		{"couple, box chosen", []Face{leftTwin, twin}, SubjectChoice{ByBox: true, Box: [4]float64{125, 55, 235, 175}}, twin, nil},
		{"index out of range", []Face{centred}, SubjectChoice{Index: 3}, Face{}, ErrNoSuchFace},
		{"box matches nothing", []Face{centred}, SubjectChoice{ByBox: true, Box: [4]float64{0, 0, 20, 20}}, Face{}, ErrNoSuchFace},
		// One face of a couple found, the other missed: the face's mirror
		// through the centre is free for an unseen face as prominent.
		{"one face, off centre", []Face{leftTwin}, Auto, Face{}, ErrOffCentre},
		{"one face, off centre, chosen", []Face{leftTwin}, SubjectChoice{Index: 0}, leftTwin, nil},
		{"one face, off centre by less than half its width", []Face{box(50, 70, 160, 180)}, Auto, box(50, 70, 160, 180), nil},
		// A portrait's face sits above the centre: only the horizontal
		// offset counts.
		// A doubtful face at the centre against a clear one as big beside
		// it: a person decides; a doubtful small one in the background
		// does not matter.
		{"a surer face as big beside the subject", []Face{scored(box(0, 60, 100, 170), 0.93), scored(box(90, 70, 190, 180), 0.6)}, Auto, Face{}, ErrAmbiguous},
		{"a surer face, small, in the background", []Face{scored(box(0, 0, 50, 50), 0.99), scored(centred, 0.8)}, Auto, centred, nil},
		{"a surer face, smaller, beside a sure subject", []Face{scored(box(0, 80, 80, 160), 0.97), scored(box(90, 70, 190, 180), 0.9)}, Auto, box(90, 70, 190, 180), nil},
		// A group of people of one size: the one in the middle is not
		// the photo's subject.
		{"a group, the middle one most prominent", []Face{scored(box(0, 100, 60, 160), 0.95), scored(box(95, 95, 155, 155), 0.95), scored(box(190, 100, 250, 160), 0.95)}, Auto, Face{}, ErrAmbiguous},
		{"a group of one size, the others doubtful", []Face{scored(box(0, 100, 60, 160), 0.7), scored(box(95, 95, 155, 155), 0.95), scored(box(190, 100, 250, 160), 0.7)}, Auto, box(95, 95, 155, 155), nil},
		{"one face, high in the photo", []Face{box(80, 0, 170, 90)}, Auto, box(80, 0, 170, 90), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			sel, err := SelectSubject(c.faces, w, h, c.choice)
			if !errors.Is(err, c.err) {
				t.Fatalf("err %v, want %v", err, c.err)
			}
			if len(sel.Faces) != len(c.faces) {
				t.Fatalf("%d faces listed, want %d", len(sel.Faces), len(c.faces))
			}
			if c.err != nil {
				if sel.Subject != nil {
					t.Fatalf("subject %+v with an error", sel.Subject.Box)
				}
				return
			}
			if sel.Subject.Box != c.want.Box {
				t.Fatalf("subject %+v, want %+v", sel.Subject.Box, c.want.Box)
			}
			for i := 1; i < len(sel.Prominence); i++ {
				if sel.Prominence[i] > sel.Prominence[i-1] {
					t.Fatalf("faces not ranked by prominence: %v", sel.Prominence)
				}
			}
		})
	}
}

func TestEnrollmentTiles(t *testing.T) {
	for _, c := range []struct {
		w, h int
		want []image.Rectangle
	}{
		{250, 250, nil},
		{300, 250, nil}, // aspect 1.2: the whole image is enough
		{500, 250, []image.Rectangle{image.Rect(0, 0, 250, 250), image.Rect(125, 0, 375, 250), image.Rect(250, 0, 500, 250)}},
		{550, 250, []image.Rectangle{image.Rect(0, 0, 250, 250), image.Rect(125, 0, 375, 250), image.Rect(250, 0, 500, 250), image.Rect(300, 0, 550, 250)}},
		{200, 320, []image.Rectangle{image.Rect(0, 0, 200, 200), image.Rect(0, 100, 200, 300), image.Rect(0, 120, 200, 320)}},
	} {
		got := enrollmentTiles(c.w, c.h)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%dx%d: tiles %v, want %v", c.w, c.h, got, c.want)
		}
		// Every pixel is in a tile, and a face up to half a tile wide is
		// whole in one of them.
		for _, r := range got {
			if !r.In(image.Rect(0, 0, c.w, c.h)) || r.Dx() != r.Dy() {
				t.Errorf("%dx%d: tile %v outside the image or not square", c.w, c.h, r)
			}
		}
	}
}

func TestSameFaceAndInnerEdge(t *testing.T) {
	whole := detect.Box{X0: 100, Y0: 50, X1: 200, Y1: 150}
	for _, c := range []struct {
		name string
		b    detect.Box
		want bool
	}{
		{"itself", whole, true},
		{"shifted a little", detect.Box{X0: 110, Y0: 55, X1: 210, Y1: 155}, true},
		{"the left half, cut by a tile edge", detect.Box{X0: 100, Y0: 50, X1: 150, Y1: 150}, true},
		{"a small box inside", detect.Box{X0: 130, Y0: 80, X1: 160, Y1: 110}, true},
		{"beside it", detect.Box{X0: 210, Y0: 50, X1: 310, Y1: 150}, false},
		{"overlapping a corner", detect.Box{X0: 170, Y0: 120, X1: 270, Y1: 220}, false},
	} {
		if got := sameFace(whole, c.b); got != c.want {
			t.Errorf("sameFace %s: %v, want %v", c.name, got, c.want)
		}
	}
	tile := image.Rect(125, 0, 375, 250)
	for _, c := range []struct {
		name string
		b    detect.Box
		want bool
	}{
		{"inside", detect.Box{X0: 140, Y0: 60, X1: 250, Y1: 170}, false},
		{"at the tile's left edge", detect.Box{X0: 125, Y0: 60, X1: 200, Y1: 170}, true},
		{"at the tile's right edge", detect.Box{X0: 300, Y0: 60, X1: 374, Y1: 170}, true},
		{"at the image's top edge", detect.Box{X0: 140, Y0: 0, X1: 250, Y1: 110}, false},
	} {
		if got := touchesInnerEdge(c.b, tile, 500, 250); got != c.want {
			t.Errorf("touchesInnerEdge %s: %v, want %v", c.name, got, c.want)
		}
	}
}

// The surer-face rule, not prominence, refuses the doubtful centred face.
func TestSelectSubjectSurerFace(t *testing.T) {
	faces := []Face{scored(box(0, 60, 100, 170), 0.93), scored(box(90, 70, 190, 180), 0.6)}
	sel, err := SelectSubject(faces, 250, 250, Auto)
	if !errors.Is(err, ErrAmbiguous) || sel.Prominence[1] >= AmbiguousRatio*sel.Prominence[0] {
		t.Fatalf("err %v, prominence %v: want ambiguous by confidence, not by prominence", err, sel.Prominence)
	}
}

// sideBySide is a and b (b resized to a's size) side by side, or a beside
// black when b is empty: the composed couple of `facegate eval
// -enrollment`.
func sideBySide(t *testing.T, a, b string) *imageio.RGB {
	t.Helper()
	data := TestDataDir(t)
	ia := readImage(t, filepath.Join(data, "faces", a))
	ib := imageio.NewRGB(ia.W, ia.H)
	if b != "" {
		var err error
		if ib, err = imageio.Resize(readImage(t, filepath.Join(data, "faces", b)), ia.W, ia.H); err != nil {
			t.Fatal(err)
		}
	}
	c := imageio.NewRGB(2*ia.W, ia.H)
	for y := 0; y < ia.H; y++ {
		copy(c.Pix[c.Offset(0, y):c.Offset(ia.W, y)], ia.Pix[ia.Offset(0, y):ia.Offset(ia.W, y)])
		copy(c.Pix[c.Offset(ia.W, y):c.Offset(2*ia.W, y)], ib.Pix[ib.Offset(0, y):ib.Offset(ib.W, y)])
	}
	return c
}

// Issue 13: no template from a bystander's face. Two LFW portraits side by
// side where the whole-image pass finds, where the photos meet, a doubtful
// face more prominent than either person (it enrolled it before): the
// tiles find both people clearly and the photo is refused as ambiguous. A
// portrait beside an empty half: the one face is off centre, refused
// unless chosen.
func TestAssessEnrollmentCouples(t *testing.T) {
	p := openPipeline(t)
	lim := quality.DefaultEnrollmentLimits()

	img := sideBySide(t, "lfw__Frank_Dunham_Jr/001.jpg", "lfw__Richard_Myers/001.jpg")
	whole, err := p.Detect(img)
	if err != nil {
		t.Fatal(err)
	}
	// Prominence alone (the rule before the confidence check) picks a
	// doubtful face where the photos meet.
	top := -1
	for i := range whole {
		if top < 0 || Prominence(&whole[i], img.W, img.H) > Prominence(&whole[top], img.W, img.H) {
			top = i
		}
	}
	if top < 0 || math.Abs((whole[top].Box.X0+whole[top].Box.X1)/2-float64(img.W)/2) > 60 || whole[top].Score > 0.88 {
		t.Fatalf("the whole-image pass's most prominent face is not the doubtful one where the photos meet: %+v", whole)
	}
	ph, err := p.AssessEnrollment(img, Auto, lim, false)
	if !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("couple with a doubtful face between them: %v, want ErrAmbiguous (subject %+v)", err, ph.Subject)
	}
	left, right := false, false
	for _, f := range ph.Faces {
		cx := (f.Box.X0 + f.Box.X1) / 2
		left = left || (cx > 100 && cx < 150 && f.Score > 0.88)
		right = right || (cx > 350 && cx < 400 && f.Score > 0.88)
	}
	if !left || !right {
		t.Fatalf("both people not found clearly: %d faces", len(ph.Faces))
	}

	alone := sideBySide(t, "lfw__Frank_Dunham_Jr/001.jpg", "")
	if _, err := p.AssessEnrollment(alone, Auto, lim, false); !errors.Is(err, ErrOffCentre) {
		t.Fatalf("one portrait beside an empty half: %v, want ErrOffCentre", err)
	}
	ph, err = p.AssessEnrollment(alone, SubjectChoice{Index: 0}, lim, false)
	if err != nil || ph.Subject == nil || ph.Subject.Embedding == nil {
		t.Fatalf("the off-centre face chosen by a person: %v", err)
	}
}
