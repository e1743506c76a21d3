package daemon

import (
	"errors"
	"fmt"
	"strings"

	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/imageio"
)

// Enrollment error codes; the MQTT reply carries them as they are.
const (
	CodeNoFace       = "no_face"
	CodeSeveralFaces = "several_faces"
	CodeLowQuality   = "low_quality"
	CodeTooLarge     = "too_large"
	CodeBadFormat    = "bad_format"
)

// EnrollError is why one enrollment image was refused.
type EnrollError struct {
	Code  string // one of the Code* constants
	Index int    // which image of the request
	Msg   string
}

func (e *EnrollError) Error() string {
	return fmt.Sprintf("image %d: %s: %s", e.Index, e.Code, e.Msg)
}

// SecondFaceRatio: an enrollment photo with another face at least this
// share of the main face's area is refused as several_faces: whose face
// would be enrolled is ambiguous.
const SecondFaceRatio = 0.25

// EmbedEnrollImage runs one enrollment photo through the same path as
// verification (decode, detect, quality gate, align, embed) and returns its
// embedding, or an *EnrollError saying why it cannot be used.
func (e *Engine) EmbedEnrollImage(index int, data []byte, lim imageio.Limits) ([]float32, error) {
	img, _, err := imageio.DecodeBytes(data, lim)
	switch {
	case errors.Is(err, imageio.ErrTooLarge):
		return nil, &EnrollError{Code: CodeTooLarge, Index: index, Msg: err.Error()}
	case err != nil:
		return nil, &EnrollError{Code: CodeBadFormat, Index: index, Msg: err.Error()}
	}
	faces, err := e.Pipe.Detect(img)
	if err != nil {
		return nil, fmt.Errorf("image %d: %w", index, err)
	}
	if len(faces) == 0 {
		return nil, &EnrollError{Code: CodeNoFace, Index: index, Msg: "no face found"}
	}
	main := infer.Largest(faces)
	others := 0
	for i := range faces {
		if &faces[i] != main && faces[i].Box.Area() >= SecondFaceRatio*main.Box.Area() {
			others++
		}
	}
	if others > 0 {
		return nil, &EnrollError{Code: CodeSeveralFaces, Index: index, Msg: fmt.Sprintf("%d faces found; enroll from a photo of one person", others+1)}
	}
	q, err := e.Pipe.Assess(img, main, e.Quality)
	if err != nil {
		return nil, fmt.Errorf("image %d: %w", index, err)
	}
	if !q.OK {
		return nil, &EnrollError{Code: CodeLowQuality, Index: index, Msg: "failed " + strings.Join(q.Failures, ", ") + " (" + q.String() + ")"}
	}
	if err := e.Pipe.Embed(img, []*infer.Face{main}); err != nil {
		return nil, fmt.Errorf("image %d: %w", index, err)
	}
	return main.Embedding, nil
}
