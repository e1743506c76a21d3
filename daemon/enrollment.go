package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/facegate/facegate/daemon/mqtt"
	"github.com/facegate/facegate/enroll"
	"github.com/facegate/facegate/enroll/store"
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

// handleEnroll executes an authenticated enrollment request.
func (s *Service) handleEnroll(ctx context.Context, r *mqtt.EnrollRequest) mqtt.EnrollReply {
	rep := mqtt.EnrollReply{SubjectID: r.SubjectID}
	fail := func(code mqtt.Code, msg string, index *int) mqtt.EnrollReply {
		rep.Status, rep.Code, rep.Message, rep.ImageIndex = mqtt.ReplyError, code, msg, index
		s.log.Warn("enrollment refused", "request", r.RequestID, "op", r.Op, "subject", r.SubjectID, "code", code, "msg", msg)
		return rep
	}
	src := store.Source{Kind: "mqtt", KeyID: r.KeyID, RequestID: r.RequestID}
	embedAll := func() ([][]float32, *mqtt.EnrollReply) {
		var embs [][]float32
		for i, data := range r.ImageData() {
			e, err := s.engine.EmbedEnrollImage(i, data, imageio.Limits{})
			if err != nil {
				idx := i
				var ee *EnrollError
				if errors.As(err, &ee) {
					r := fail(mqtt.Code(ee.Code), ee.Msg, &idx)
					return nil, &r
				}
				r := fail(mqtt.CodeInternal, err.Error(), &idx)
				return nil, &r
			}
			embs = append(embs, e)
		}
		return embs, nil
	}
	switch r.Op {
	case mqtt.OpList:
		for _, p := range s.gallery.List() {
			rep.People = append(rep.People, mqtt.Person{ID: p.ID, Name: p.Name, Templates: p.Templates})
		}
		rep.Status = mqtt.ReplyOK
		return rep
	case mqtt.OpDelete:
		if err := s.gallery.Delete(r.SubjectID); err != nil {
			if errors.Is(err, enroll.ErrNotFound) {
				return fail(mqtt.CodeUnknownSubject, err.Error(), nil)
			}
			return fail(mqtt.CodeInternal, err.Error(), nil)
		}
	case mqtt.OpAdd, mqtt.OpReplace, mqtt.OpEnrollFromCamera:
		// Checked before any image is embedded or a camera frame waited for;
		// the gallery checks again, atomically, when it writes.
		switch has := s.gallery.Has(r.SubjectID); {
		case has && r.Op != mqtt.OpReplace:
			return fail(mqtt.CodeSubjectExists, "subject "+r.SubjectID+" is already enrolled: use replace to overwrite, add_images to add photos", nil)
		case !has && r.Op == mqtt.OpReplace:
			return fail(mqtt.CodeUnknownSubject, "no such subject: "+r.SubjectID+" (use add)", nil)
		}
		var embs [][]float32
		if r.Op != mqtt.OpEnrollFromCamera {
			var bad *mqtt.EnrollReply
			if embs, bad = embedAll(); bad != nil {
				return *bad
			}
		} else {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second+time.Duration(r.Frames)*2*time.Second)
			var err error
			embs, err = s.engine.CollectFaces(cctx, r.Frames)
			cancel()
			switch {
			case errors.Is(err, ErrBusy):
				return fail(mqtt.CodeBusy, err.Error(), nil)
			case err != nil:
				return fail(mqtt.CodeTimeout, err.Error(), nil)
			}
		}
		src.Photos = len(embs)
		put := s.gallery.Enroll
		if r.Op == mqtt.OpReplace {
			put = s.gallery.Replace
		}
		if err := put(r.SubjectID, r.Name, src, embs); err != nil {
			switch {
			case errors.Is(err, enroll.ErrExists):
				return fail(mqtt.CodeSubjectExists, err.Error(), nil)
			case errors.Is(err, enroll.ErrNotFound):
				return fail(mqtt.CodeUnknownSubject, err.Error(), nil)
			}
			return fail(mqtt.CodeInternal, err.Error(), nil)
		}
		rep.Templates = len(embs)
	case mqtt.OpAddImages:
		if !s.gallery.Has(r.SubjectID) {
			return fail(mqtt.CodeUnknownSubject, "no such subject: "+r.SubjectID, nil)
		}
		embs, bad := embedAll()
		if bad != nil {
			return *bad
		}
		if err := s.gallery.AddImages(r.SubjectID, embs); err != nil {
			if errors.Is(err, enroll.ErrNotFound) {
				return fail(mqtt.CodeUnknownSubject, err.Error(), nil)
			}
			return fail(mqtt.CodeInternal, err.Error(), nil)
		}
		rep.Templates = len(embs)
	default:
		return fail(mqtt.CodeBadRequest, "unknown op "+string(r.Op), nil)
	}
	rep.Status = mqtt.ReplyOK
	s.updateGalleryStats()
	s.log.Info("enrollment", "request", r.RequestID, "op", r.Op, "subject", r.SubjectID, "templates", rep.Templates, "key_id", r.KeyID)
	return rep
}
