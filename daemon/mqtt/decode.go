package mqtt

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // DecodeConfig for JPEG headers
	_ "image/png"  // DecodeConfig for PNG headers
	"io"
	"strconv"
	"strings"

	"github.com/facegate/facegate/daemon/auth"
	"github.com/facegate/facegate/internal/ident"
)

// Limits bound what the decoders accept from the network. Zero fields take
// the defaults of DefaultLimits.
type Limits struct {
	// MaxPayload is the largest message accepted on any request topic,
	// checked before parsing.
	MaxPayload int `desc:"largest message accepted on a request topic, in bytes, checked before parsing"`
	// MaxImageBytes is the largest decoded image file.
	MaxImageBytes int `desc:"largest image file in a request, in bytes"`
	// MaxImages is the most images per request (at most 5).
	MaxImages int `desc:"most images in one request (at most 5)"`
	// MaxPixels bounds width*height read from the image header, against
	// decompression bombs.
	MaxPixels int `desc:"largest width x height read from an image header (against decompression bombs)"`
}

// DefaultLimits are the limits used when Limits fields are zero.
var DefaultLimits = Limits{
	MaxPayload:    8 << 20,
	MaxImageBytes: 1 << 20,
	MaxImages:     5,
	MaxPixels:     4096 * 4096,
}

func (l Limits) withDefaults() Limits {
	if l.MaxPayload <= 0 {
		l.MaxPayload = DefaultLimits.MaxPayload
	}
	if l.MaxImageBytes <= 0 {
		l.MaxImageBytes = DefaultLimits.MaxImageBytes
	}
	if l.MaxImages <= 0 || l.MaxImages > 5 {
		l.MaxImages = DefaultLimits.MaxImages
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultLimits.MaxPixels
	}
	return l
}

// Size limits of string fields.
const (
	maxNameLen      = 128
	maxNoteLen      = 1024
	maxFrames       = 5
	maxClaimTimeout = 60000
)

// DecodeError is a request that was rejected by a decoder. Code is the
// reply code; Field names the offending field when there is one; Image is
// the image index for per-image errors, else -1.
type DecodeError struct {
	Code  Code
	Field string
	Image int
	Msg   string
}

func (e *DecodeError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Code, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Msg)
}

// ReplyCode implements CodedError.
func (e *DecodeError) ReplyCode() Code { return e.Code }

// CodedError is implemented by errors that map to a reply code.
type CodedError interface {
	error
	ReplyCode() Code
}

// CodeOf maps err to a reply code: the code of the first CodedError in the
// chain, else internal.
func CodeOf(err error) Code {
	var ce CodedError
	if errors.As(err, &ce) {
		return ce.ReplyCode()
	}
	return CodeInternal
}

func badRequest(field, format string, args ...any) *DecodeError {
	return &DecodeError{Code: CodeBadRequest, Field: field, Image: -1, Msg: fmt.Sprintf(format, args...)}
}

// decodeStrict parses one JSON object into v: size checked first, unknown
// fields rejected, exactly one value.
func decodeStrict(payload []byte, max int, v any) error {
	if len(payload) > max {
		return &DecodeError{Code: CodeTooLarge, Image: -1, Msg: fmt.Sprintf("payload is %d bytes, limit %d", len(payload), max)}
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			field := ute.Field
			if i := strings.LastIndexByte(field, '.'); i >= 0 {
				field = field[i+1:] // embedded Auth fields are top-level in JSON
			}
			return badRequest(field, "wrong type: %s", ute.Value)
		}
		if strings.HasPrefix(err.Error(), "json: unknown field") {
			return badRequest("", "%s", strings.TrimPrefix(err.Error(), "json: "))
		}
		return &DecodeError{Code: CodeBadFormat, Image: -1, Msg: "not a JSON object: " + err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &DecodeError{Code: CodeBadFormat, Image: -1, Msg: "trailing data after the JSON object"}
	}
	return nil
}

// checkID accepts identifiers that are safe in topics and logs:
// 1..64 bytes of [A-Za-z0-9._-], not starting with a dot (internal/ident,
// the rule the signer and the gallery use too).
func checkID(field, s string, required bool) error {
	if s == "" {
		if required {
			return badRequest(field, "required")
		}
		return nil
	}
	if err := ident.CheckID(s); err != nil {
		return badRequest(field, "%v", err)
	}
	return nil
}

// checkText accepts printable UTF-8 text without control, bidirectional or
// other invisible format characters (internal/ident).
func checkText(field, s string, max int) error {
	if err := ident.CheckText(s, max); err != nil {
		return badRequest(field, "%v", err)
	}
	return nil
}

func checkAuth(a Auth) error {
	if a == (Auth{}) {
		return nil // unsigned; whether that is acceptable is the verifier's call
	}
	if err := checkID("key_id", a.KeyID, true); err != nil {
		return err
	}
	if a.TS <= 0 || a.TS > auth.MaxTimestamp {
		return badRequest("ts", "required with key_id: unix seconds")
	}
	if len(a.Nonce) < auth.MinNonceLen || len(a.Nonce) > auth.MaxNonceLen {
		return badRequest("nonce", "required with key_id: %d-%d of A-Z a-z 0-9 _ -", auth.MinNonceLen, auth.MaxNonceLen)
	}
	for i := 0; i < len(a.Nonce); i++ {
		c := a.Nonce[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return badRequest("nonce", "invalid character %q", c)
		}
	}
	if len(a.Sig) != auth.HMACSignatureHexLen && len(a.Sig) != auth.Ed25519SignatureHexLen {
		return badRequest("sig", "required with key_id: %d (HMAC) or %d (Ed25519) lowercase hex digits", auth.HMACSignatureHexLen, auth.Ed25519SignatureHexLen)
	}
	for i := 0; i < len(a.Sig); i++ {
		if c := a.Sig[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return badRequest("sig", "not lowercase hex")
		}
	}
	return nil
}

// validateFields checks the fields of a request that the signature covers
// by the rules the decoders apply, for signers.
func validateFields(s Signed) error {
	switch r := s.(type) {
	case *EnrollRequest:
		if err := checkID("request_id", r.RequestID, true); err != nil {
			return err
		}
		if !r.Op.Valid() {
			return badRequest("op", "unknown operation %q", r.Op)
		}
		if err := checkID("subject_id", r.SubjectID, r.Op != OpList); err != nil {
			return err
		}
		if err := checkFaceChoices(r.Faces, len(r.Images)); err != nil {
			return err
		}
		return checkText("name", r.Name, maxNameLen)
	case *Claim:
		if err := checkID("request_id", r.RequestID, true); err != nil {
			return err
		}
		return checkID("subject_id", r.SubjectID, true)
	case *Feedback:
		if err := checkID("event_id", r.EventID, true); err != nil {
			return err
		}
		if err := checkText("operator", r.Operator, maxNameLen); err != nil {
			return err
		}
		return checkText("note", r.Note, maxNoteLen)
	}
	return nil
}

func checkFaceChoices(fs []FaceChoice, images int) error {
	seen := map[int]bool{}
	for _, f := range fs {
		switch {
		case f.Image < 0 || f.Image >= images:
			return badRequest("faces", "image %d: the request has %d images", f.Image, images)
		case seen[f.Image]:
			return badRequest("faces", "image %d chosen twice", f.Image)
		case (f.Index == nil) == (f.Box == nil):
			return badRequest("faces", "image %d: give an index or a box", f.Image)
		case f.Index != nil && (*f.Index < 0 || *f.Index > 63):
			return badRequest("faces", "image %d: index must be 0..63", f.Image)
		case f.Box != nil && (f.Box.W <= 0 || f.Box.H <= 0 || f.Box.X < -100000 || f.Box.Y < -100000 || f.Box.X > 100000 || f.Box.Y > 100000 || f.Box.W > 100000 || f.Box.H > 100000):
			return badRequest("faces", "image %d: box needs a positive width and height", f.Image)
		}
		seen[f.Image] = true
	}
	return nil
}

// canonicalFaces encodes face choices for the signed body:
// "<image>=<index>" or "<image>=<x>,<y>,<w>,<h>", joined by ";".
func canonicalFaces(fs []FaceChoice) string {
	var parts []string
	for _, f := range fs {
		switch {
		case f.Index != nil:
			parts = append(parts, strconv.Itoa(f.Image)+"="+strconv.Itoa(*f.Index))
		case f.Box != nil:
			parts = append(parts, fmt.Sprintf("%d=%d,%d,%d,%d", f.Image, f.Box.X, f.Box.Y, f.Box.W, f.Box.H))
		default:
			parts = append(parts, strconv.Itoa(f.Image)+"=")
		}
	}
	return strings.Join(parts, ";")
}

// DecodeClaim parses and validates a claim.
func DecodeClaim(payload []byte, lim Limits) (*Claim, error) {
	lim = lim.withDefaults()
	var c Claim
	if err := decodeStrict(payload, min(lim.MaxPayload, 4096), &c); err != nil {
		return nil, err
	}
	if err := checkID("request_id", c.RequestID, true); err != nil {
		return nil, err
	}
	if err := checkID("subject_id", c.SubjectID, true); err != nil {
		return nil, err
	}
	if c.TimeoutMS < 0 || c.TimeoutMS > maxClaimTimeout {
		return nil, badRequest("timeout_ms", "must be 0..%d", maxClaimTimeout)
	}
	if err := checkAuth(c.Auth); err != nil {
		return nil, err
	}
	return &c, nil
}

// DecodeFeedback parses and validates operator feedback.
func DecodeFeedback(payload []byte, lim Limits) (*Feedback, error) {
	lim = lim.withDefaults()
	var f Feedback
	if err := decodeStrict(payload, min(lim.MaxPayload, 8192), &f); err != nil {
		return nil, err
	}
	if err := checkID("event_id", f.EventID, true); err != nil {
		return nil, err
	}
	if f.Correct == nil {
		return nil, badRequest("correct", "required")
	}
	if f.Operator == "" {
		return nil, badRequest("operator", "required")
	}
	if err := checkText("operator", f.Operator, maxNameLen); err != nil {
		return nil, err
	}
	if err := checkText("note", f.Note, maxNoteLen); err != nil {
		return nil, err
	}
	if err := checkAuth(f.Auth); err != nil {
		return nil, err
	}
	return &f, nil
}

// RequestIDOf extracts a valid request_id from a payload that failed to
// decode, so that the error reply can still go to enroll/reply/<id>. It
// returns "" when there is none (or the payload is too large to look at).
func RequestIDOf(payload []byte, lim Limits) string {
	lim = lim.withDefaults()
	if len(payload) > lim.MaxPayload {
		return ""
	}
	var probe struct {
		RequestID string `json:"request_id"`
	}
	if json.Unmarshal(payload, &probe) != nil || checkID("request_id", probe.RequestID, true) != nil {
		return ""
	}
	return probe.RequestID
}

// DecodeEnrollRequest parses and validates an enrollment request and
// decodes its images (see EnrollRequest.ImageData). Image files must be
// JPEG or PNG whose header decodes and whose pixel count is within limits;
// the full decode and face checks are the enroller's.
func DecodeEnrollRequest(payload []byte, lim Limits) (*EnrollRequest, error) {
	lim = lim.withDefaults()
	var r EnrollRequest
	if err := decodeStrict(payload, lim.MaxPayload, &r); err != nil {
		return nil, err
	}
	if err := checkID("request_id", r.RequestID, true); err != nil {
		return nil, err
	}
	if r.Op == "" {
		return nil, badRequest("op", "required")
	}
	if !r.Op.Valid() {
		return nil, badRequest("op", "unknown operation %q", r.Op)
	}
	if err := checkAuth(r.Auth); err != nil {
		return nil, err
	}
	if err := checkText("name", r.Name, maxNameLen); err != nil {
		return nil, err
	}
	needSubject := r.Op != OpList
	if err := checkID("subject_id", r.SubjectID, needSubject); err != nil {
		return nil, err
	}
	wantImages := r.Op == OpAdd || r.Op == OpReplace || r.Op == OpAddImages
	switch {
	case wantImages && len(r.Images) == 0:
		return nil, badRequest("images", "1..%d images required for %s", lim.MaxImages, r.Op)
	case !wantImages && len(r.Images) > 0:
		return nil, badRequest("images", "not allowed for %s", r.Op)
	case len(r.Images) > lim.MaxImages:
		return nil, &DecodeError{Code: CodeTooLarge, Field: "images", Image: -1, Msg: fmt.Sprintf("%d images, at most %d", len(r.Images), lim.MaxImages)}
	}
	if r.Op == OpEnrollFromCamera {
		if r.Frames < 1 || r.Frames > maxFrames {
			return nil, badRequest("frames", "must be 1..%d for %s", maxFrames, r.Op)
		}
	} else if r.Frames != 0 {
		return nil, badRequest("frames", "only for %s", OpEnrollFromCamera)
	}
	if r.Op != OpAdd && r.Op != OpReplace && r.Op != OpEnrollFromCamera && r.Name != "" {
		return nil, badRequest("name", "only for add, replace and enroll_from_camera")
	}
	if err := checkFaceChoices(r.Faces, len(r.Images)); err != nil {
		return nil, err
	}
	if r.Force && !wantImages && r.Op != OpEnrollFromCamera {
		return nil, badRequest("force", "only for add, replace, add_images and enroll_from_camera")
	}
	r.decoded = make([][]byte, 0, len(r.Images))
	for i, s := range r.Images {
		b, err := decodeImage(s, lim)
		if err != nil {
			err.Image = i
			err.Field = fmt.Sprintf("images[%d]", i)
			return nil, err
		}
		r.decoded = append(r.decoded, b)
	}
	return &r, nil
}

func decodeImage(s string, lim Limits) ([]byte, *DecodeError) {
	if base64.StdEncoding.DecodedLen(len(s)) > lim.MaxImageBytes+3 {
		return nil, &DecodeError{Code: CodeTooLarge, Msg: fmt.Sprintf("image larger than %d bytes", lim.MaxImageBytes)}
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, &DecodeError{Code: CodeBadFormat, Msg: "not standard base64: " + err.Error()}
	}
	if len(b) > lim.MaxImageBytes {
		return nil, &DecodeError{Code: CodeTooLarge, Msg: fmt.Sprintf("image is %d bytes, limit %d", len(b), lim.MaxImageBytes)}
	}
	if !isJPEG(b) && !isPNG(b) {
		return nil, &DecodeError{Code: CodeBadFormat, Msg: "not a JPEG or PNG file"}
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, &DecodeError{Code: CodeBadFormat, Msg: "unreadable image header: " + err.Error()}
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, &DecodeError{Code: CodeBadFormat, Msg: "empty image"}
	}
	if int64(cfg.Width)*int64(cfg.Height) > int64(lim.MaxPixels) {
		return nil, &DecodeError{Code: CodeTooLarge, Msg: fmt.Sprintf("image is %dx%d, more than %d pixels", cfg.Width, cfg.Height, lim.MaxPixels)}
	}
	return b, nil
}

func isJPEG(b []byte) bool { return len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF }
func isPNG(b []byte) bool  { return bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) }

// Signed is a request carrying Auth fields. Operation, ID and
// CanonicalBody are what daemon/auth's canonical form signs (Operation,
// RequestID and Body of auth.Request), so the signature covers every field
// of the request and the device it is meant for.
type Signed interface {
	Operation() string
	ID() string
	AuthFields() Auth
	// CanonicalBody returns the request's fields in daemon/auth's Body
	// encoding ("<name>:<len>:<value>\n", fixed order, device_id first),
	// with images as the lowercase hex sha256 of their decoded bytes,
	// comma-separated; whatever JSON spacing or escaping the sender used.
	CanonicalBody(deviceID string) []byte
}

func body(fields ...auth.BodyField) []byte {
	b, err := auth.Body(fields...)
	if err != nil {
		panic("mqtt: invalid canonical field name: " + err.Error()) // names are constants
	}
	return b
}

// Operation implements Signed: "enroll/<op>".
func (r *EnrollRequest) Operation() string { return "enroll/" + string(r.Op) }

// ID implements Signed.
func (r *EnrollRequest) ID() string { return r.RequestID }

// AuthFields implements Signed.
func (r *EnrollRequest) AuthFields() Auth { return r.Auth }

// CanonicalBody implements Signed.
func (r *EnrollRequest) CanonicalBody(deviceID string) []byte {
	hashes := make([]string, len(r.Images))
	for i, s := range r.Images {
		var sum [32]byte
		if i < len(r.decoded) {
			sum = sha256.Sum256(r.decoded[i])
		} else if b, err := base64.StdEncoding.DecodeString(s); err == nil {
			sum = sha256.Sum256(b) // a client building a request
		} else {
			sum = sha256.Sum256([]byte(s))
		}
		hashes[i] = hex.EncodeToString(sum[:])
	}
	fields := []auth.BodyField{
		{Name: "device_id", Value: deviceID},
		{Name: "request_id", Value: r.RequestID},
		{Name: "op", Value: string(r.Op)},
		{Name: "subject_id", Value: r.SubjectID},
		{Name: "name", Value: r.Name},
		{Name: "frames", Value: strconv.Itoa(r.Frames)},
		{Name: "images", Value: strings.Join(hashes, ",")},
	}
	// Fields added later are appended only when present, so that requests
	// without them keep the signatures older clients compute.
	if len(r.Faces) > 0 {
		fields = append(fields, auth.BodyField{Name: "faces", Value: canonicalFaces(r.Faces)})
	}
	if r.Force {
		fields = append(fields, auth.BodyField{Name: "force", Value: "true"})
	}
	return body(fields...)
}

// Operation implements Signed: "claim".
func (c *Claim) Operation() string { return "claim" }

// ID implements Signed.
func (c *Claim) ID() string { return c.RequestID }

// AuthFields implements Signed.
func (c *Claim) AuthFields() Auth { return c.Auth }

// CanonicalBody implements Signed.
func (c *Claim) CanonicalBody(deviceID string) []byte {
	return body(
		auth.BodyField{Name: "device_id", Value: deviceID},
		auth.BodyField{Name: "request_id", Value: c.RequestID},
		auth.BodyField{Name: "subject_id", Value: c.SubjectID},
		auth.BodyField{Name: "timeout_ms", Value: strconv.Itoa(c.TimeoutMS)},
	)
}

// Operation implements Signed: "feedback".
func (f *Feedback) Operation() string { return "feedback" }

// ID implements Signed; feedback has no request id, the event id stands in.
func (f *Feedback) ID() string { return f.EventID }

// AuthFields implements Signed.
func (f *Feedback) AuthFields() Auth { return f.Auth }

// CanonicalBody implements Signed.
func (f *Feedback) CanonicalBody(deviceID string) []byte {
	return body(
		auth.BodyField{Name: "device_id", Value: deviceID},
		auth.BodyField{Name: "event_id", Value: f.EventID},
		auth.BodyField{Name: "correct", Value: strconv.FormatBool(f.Correct != nil && *f.Correct)},
		auth.BodyField{Name: "operator", Value: f.Operator},
		auth.BodyField{Name: "note", Value: f.Note},
	)
}
