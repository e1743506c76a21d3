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
	"github.com/facegate/facegate/infer/quality"
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

// EnrollLimits are the enrollment photo limits (calibrated for photos,
// not camera frames: docs/enrollment.md).
var EnrollLimits = quality.DefaultEnrollmentLimits()

// EmbedEnrollImage runs one enrollment photo through the enrollment path
// (decode, detect, select the subject, judge its quality with
// EnrollLimits, align, embed with every tower) and returns its embeddings
// with the photo's report, or an *EnrollError saying why it cannot be
// used; the report is filled in as far as the photo got (the faces found
// for several_faces, the reasons for low_quality).
func (e *Engine) EmbedEnrollImage(index int, data []byte, lim imageio.Limits, choice infer.SubjectChoice) (TowerEmbeddings, mqtt.PhotoReport, error) {
	rep := mqtt.PhotoReport{Index: index, Verdict: string(quality.Refused)}
	img, _, err := imageio.DecodeBytes(data, lim)
	switch {
	case errors.Is(err, imageio.ErrTooLarge):
		return nil, rep, &EnrollError{Code: CodeTooLarge, Index: index, Msg: err.Error()}
	case err != nil:
		return nil, rep, &EnrollError{Code: CodeBadFormat, Index: index, Msg: err.Error()}
	}
	ph, err := e.Pipe.AssessEnrollment(img, choice, EnrollLimits, false)
	for i, f := range ph.Faces {
		rep.Faces = append(rep.Faces, mqtt.FaceFound{Box: mqtt.Box{X: int(f.Box.X0), Y: int(f.Box.Y0), W: int(f.Box.W()), H: int(f.Box.H())}, Prominence: ph.Prominence[i]})
	}
	switch {
	case errors.Is(err, infer.ErrNoFace):
		rep.Reasons = []string{"no face found"}
		return nil, rep, &EnrollError{Code: CodeNoFace, Index: index, Msg: "no face found: use a photo showing the whole face"}
	case errors.Is(err, infer.ErrAmbiguous):
		rep.Reasons = []string{err.Error()}
		return nil, rep, &EnrollError{Code: CodeSeveralFaces, Index: index, Msg: fmt.Sprintf("%v: choose one with faces:[{image:%d,index:N}] (N from this reply's photos[].faces) or a box", err, index)}
	case errors.Is(err, infer.ErrOffCentre):
		// The one face found may be a bystander beside a face the detector
		// missed: a person looks (docs/enrollment.md).
		rep.Reasons = []string{err.Error()}
		return nil, rep, &EnrollError{Code: CodeSeveralFaces, Index: index, Msg: fmt.Sprintf("%v: if it is the person's face, choose it with faces:[{image:%d,index:0}]; else crop the photo to the person", err, index)}
	case errors.Is(err, infer.ErrNoSuchFace):
		rep.Reasons = []string{err.Error()}
		return nil, rep, &EnrollError{Code: CodeNoFace, Index: index, Msg: err.Error()}
	case err != nil:
		return nil, rep, fmt.Errorf("image %d: %w", index, err)
	}
	chosen := ph.Chosen
	rep.Chosen = &chosen
	rep.Verdict, rep.Quality, rep.Reasons = string(ph.Judgement.Verdict), ph.Judgement.Score, ph.Judgement.Reasons
	if ph.Judgement.Verdict == quality.Refused {
		return nil, rep, &EnrollError{Code: CodeLowQuality, Index: index, Msg: strings.Join(ph.Judgement.Reasons, "; ")}
	}
	embs, err := embedTowers(e.Towers, e.Pipe.Det, img, ph.Subject) // one template per tower
	if err != nil {
		return nil, rep, fmt.Errorf("image %d: %w", index, err)
	}
	return embs, rep, nil
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
	var photos []store.Photo
	embedAll := func() ([]TowerEmbeddings, *mqtt.EnrollReply) {
		var embs []TowerEmbeddings
		now := time.Now()
		for i, data := range r.ImageData() {
			e, pr, err := s.engine.EmbedEnrollImage(i, data, imageio.Limits{}, choiceFor(r.Faces, i))
			pr.SHA256 = photoRecord(data, pr, now).SHA256
			rep.Photos = append(rep.Photos, pr)
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
			if pr.Verdict == string(quality.Borderline) {
				rep.Warnings = append(rep.Warnings, fmt.Sprintf("photo %d accepted with quality %.2f: %s", i, pr.Quality, strings.Join(pr.Reasons, "; ")))
			}
			photos = append(photos, photoRecord(data, pr, now))
			embs = append(embs, e)
		}
		return embs, nil
	}
	// check runs the duplicate and conflict checks; force turns a refusal
	// into an audit entry.
	check := func(embs []TowerEmbeddings) *mqtt.EnrollReply {
		c := s.checkEnrollment(r.SubjectID, r.Op, embs)
		if c == nil {
			return nil
		}
		if r.Force {
			s.log.Warn("audit: enrollment forced past a refusal", "request", r.RequestID, "op", r.Op, "subject", r.SubjectID,
				"key_id", r.KeyID, "code", c.code, "matched", c.with, "msg", c.msg)
			rep.Warnings = append(rep.Warnings, "forced: "+c.msg)
			return nil
		}
		idx := c.index
		f := fail(c.code, c.msg, &idx)
		f.ConflictWith = c.with
		return &f
	}
	switch r.Op {
	case mqtt.OpList:
		hashes := s.gallery.photoHashes()
		for _, p := range s.gallery.List() {
			rep.People = append(rep.People, mqtt.Person{ID: p.ID, Name: p.Name, Templates: p.Templates, Photos: hashes[p.ID]})
		}
		rep.Status = mqtt.ReplyOK
		return rep
	case mqtt.OpGet:
		p, err := s.gallery.exportPerson(r.SubjectID)
		if err != nil {
			if errors.Is(err, enroll.ErrNotFound) {
				return fail(mqtt.CodeUnknownSubject, err.Error(), nil)
			}
			return fail(mqtt.CodeInternal, err.Error(), nil)
		}
		rep.Person, rep.Status = p, mqtt.ReplyOK
		s.log.Info("enrollment export", "request", r.RequestID, "subject", r.SubjectID, "key_id", r.KeyID)
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
		var embs []TowerEmbeddings
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
		if bad := check(embs); bad != nil {
			return *bad
		}
		src.Photos = len(embs)
		put := s.gallery.Enroll
		if r.Op == mqtt.OpReplace {
			put = s.gallery.Replace
		}
		// Templates and photo records in one transaction: never a person
		// half enrolled.
		if err := put(r.SubjectID, r.Name, src, embs, photos...); err != nil {
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
		if bad := check(embs); bad != nil {
			return *bad
		}
		if err := s.gallery.AddImages(r.SubjectID, embs, photos...); err != nil {
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
