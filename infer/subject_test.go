package infer

import (
	"errors"
	"testing"

	"github.com/facegate/facegate/infer/detect"
)

func box(x0, y0, x1, y1 float64) Face {
	return Face{Detection: detect.Detection{Box: detect.Box{X0: x0, Y0: y0, X1: x1, Y1: y1}}}
}

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
