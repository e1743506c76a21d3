package mqtt

import (
	"time"
)

// Status payloads, published retained on the status topic. The last will
// carries StatusOffline so subscribers see a crashed or cut-off door.
const (
	StatusOnline  = "online"
	StatusOffline = "offline"
)

// Decision is the outcome of one verification attempt.
type Decision string

// Decisions. Unknown means a face was seen but matched nobody (1:N), or a
// verification could not be completed (see Event.Reason).
const (
	DecisionGranted Decision = "granted"
	DecisionDenied  Decision = "denied"
	DecisionUnknown Decision = "unknown"
)

// Valid reports whether d is one of the defined decisions.
func (d Decision) Valid() bool {
	return d == DecisionGranted || d == DecisionDenied || d == DecisionUnknown
}

// Mode is the verification mode: 1:1 (a claimed identity) or 1:N
// (identification against the whole gallery).
type Mode string

// Modes.
const (
	ModeVerify   Mode = "1:1"
	ModeIdentify Mode = "1:N"
)

// Valid reports whether m is one of the defined modes.
func (m Mode) Valid() bool { return m == ModeVerify || m == ModeIdentify }

// Subject names an enrolled person.
type Subject struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// Box is a face box in frame pixels.
type Box struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

// ModelRef identifies the model that produced a decision.
type ModelRef struct {
	ID      string `json:"id"`
	Version string `json:"version"`
}

// Event is one access decision, published with QoS 1 on `events` through
// the durable outbox. Seq increases by one per event on a device and is
// what subscribers use to detect gaps and QoS 1 duplicates.
type Event struct {
	ID       string    `json:"id"`
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	DeviceID string    `json:"device_id"`
	Decision Decision  `json:"decision"`
	// Reason qualifies the decision: match, no_match, claim_mismatch,
	// failure_to_acquire, low_quality, ... (free text, at most 64 bytes).
	Reason  string   `json:"reason,omitempty"`
	Mode    Mode     `json:"mode"`
	ClaimID string   `json:"claim_id,omitempty"`
	Subject *Subject `json:"subject,omitempty"`
	// Score is the model's match score; HigherIsMatch gives its direction
	// (true for a probability or cosine similarity, false for a distance).
	Score         float64 `json:"score"`
	Threshold     float64 `json:"threshold"`
	HigherIsMatch bool    `json:"higher_is_match"`
	// ThresholdFMR is the false-match rate the threshold was calibrated for.
	ThresholdFMR float64  `json:"threshold_fmr"`
	Face         *Box     `json:"face,omitempty"`
	Quality      *float64 `json:"quality,omitempty"`
	LatencyMS    float64  `json:"latency_ms"`
	Model        ModelRef `json:"model"`
	// Image is the aligned face crop as base64 JPEG; only present when the
	// operator enabled images in events (off by default).
	Image string `json:"image,omitempty"`
}

// Histogram is a fixed-bucket histogram: Counts[i] counts values in
// [Edges[i], Edges[i+1]); the last bucket also holds values equal to the
// top edge, and Under/Over count values outside the range.
type Histogram struct {
	Edges  []float64 `json:"edges"`
	Counts []uint64  `json:"counts"`
	Under  uint64    `json:"under"`
	Over   uint64    `json:"over"`
}

// Rate is an error-rate estimate with its sample count. Estimate is nil
// when there are no samples. Upper95 is a one-sided 95 % upper confidence
// bound: 3/n (rule of three) with zero errors, else the Wilson score bound.
type Rate struct {
	Estimate *float64 `json:"estimate"`
	Errors   uint64   `json:"errors"`
	Samples  uint64   `json:"samples"`
	Upper95  *float64 `json:"upper95"`
}

// Latency summarises the last decisions' end-to-end latency in
// milliseconds over a sliding window of Samples values.
type Latency struct {
	P50     float64 `json:"p50_ms"`
	P95     float64 `json:"p95_ms"`
	P99     float64 `json:"p99_ms"`
	Samples int     `json:"samples"`
}

// ErrorRates are the error-rate estimates at the current threshold. FMR
// and FNMR come from the enrolled gallery (offline pairs), FAR and FRR from
// operator feedback on live decisions.
type ErrorRates struct {
	FMR  Rate `json:"fmr"`
	FNMR Rate `json:"fnmr"`
	FAR  Rate `json:"far"`
	FRR  Rate `json:"frr"`
}

// ScoreHistograms holds the live and gallery score distributions.
type ScoreHistograms struct {
	Live            Histogram  `json:"live"`
	GalleryGenuine  *Histogram `json:"gallery_genuine,omitempty"`
	GalleryImpostor *Histogram `json:"gallery_impostor,omitempty"`
}

// Stats is the periodic, retained statistics payload on `stats`.
type Stats struct {
	DeviceID          string          `json:"device_id"`
	Time              time.Time       `json:"time"`
	Since             time.Time       `json:"since"`
	Attempts          uint64          `json:"attempts"`
	Grants            uint64          `json:"grants"`
	Denials           uint64          `json:"denials"`
	Unknowns          uint64          `json:"unknowns"`
	FailuresToAcquire uint64          `json:"failures_to_acquire"`
	FPS               float64         `json:"fps"`
	Latency           Latency         `json:"latency"`
	Scores            ScoreHistograms `json:"score_histograms"`
	Threshold         float64         `json:"threshold"`
	ThresholdFMR      float64         `json:"threshold_fmr"`
	HigherIsMatch     bool            `json:"higher_is_match"`
	Rates             ErrorRates      `json:"error_rates"`
	Feedback          FeedbackCounts  `json:"feedback"`
	Model             ModelRef        `json:"model"`
	GallerySubjects   int             `json:"gallery_subjects"`
	GalleryTemplates  int             `json:"gallery_templates"`
	// Frames counts the frames analysed since start; TrackedFrames those
	// of them that reused the last detection (FACEGATE_TRACK_*).
	Frames        uint64 `json:"frames"`
	TrackedFrames uint64 `json:"tracked_frames"`
	// Outbox reports the durable event queue: pending events and events
	// dropped because it was full.
	OutboxPending uint64 `json:"outbox_pending"`
	OutboxDropped uint64 `json:"outbox_dropped"`
	// RequestsDropped counts incoming requests not executed because a
	// queue was full: enroll requests answered busy and claims or feedback
	// dropped, each once.
	RequestsDropped uint64 `json:"requests_dropped"`
	// RepliesDropped counts replies to refused (malformed or
	// unauthenticated) requests left unsent during a flood; replies to
	// authenticated requests are never dropped.
	RepliesDropped uint64 `json:"replies_dropped"`
	// Camera reports the frame source, when the daemon has one.
	Camera *CameraStats `json:"camera,omitempty"`
}

// CameraStats are the frame source's counters since start.
type CameraStats struct {
	FPSIn      float64 `json:"fps_in"`     // frames delivered by the camera per second
	FPSOut     float64 `json:"fps_out"`    // frames taken by the pipeline per second
	Dropped    uint64  `json:"dropped"`    // frames replaced by a newer one before they were used
	Corrupt    uint64  `json:"corrupt"`    // undecodable frames skipped
	DecodeMS   float64 `json:"decode_ms"`  // mean decode time per frame
	Outages    uint64  `json:"outages"`    // times the camera disappeared
	Reconnects uint64  `json:"reconnects"` // times it came back
	Connected  bool    `json:"connected"`
}

// FeedbackCounts counts operator feedback by outcome.
type FeedbackCounts struct {
	Correct   uint64 `json:"correct"`
	Wrong     uint64 `json:"wrong"`
	Unmatched uint64 `json:"unmatched"`
	Repeated  uint64 `json:"repeated"`
}

// Auth carries the request-signing fields; verification is done by
// daemon/auth over the canonical form (see Signed). Sig is base64 or hex.
type Auth struct {
	KeyID string `json:"key_id,omitempty"`
	TS    int64  `json:"ts,omitempty"`
	Nonce string `json:"nonce,omitempty"`
	Sig   string `json:"sig,omitempty"`
}

// Claim is a 1:1 request: the next face seen should be verified against
// SubjectID (e.g. from a badge reader or keypad).
type Claim struct {
	RequestID string `json:"request_id"`
	SubjectID string `json:"subject_id"`
	// TimeoutMS is how long to wait for a face (default chosen by the
	// daemon; 1..60000).
	TimeoutMS int `json:"timeout_ms,omitempty"`
	Auth
}

// EnrollOp is an enrollment operation.
type EnrollOp string

// Enrollment operations.
const (
	OpAdd              EnrollOp = "add"
	OpReplace          EnrollOp = "replace"
	OpAddImages        EnrollOp = "add_images"
	OpDelete           EnrollOp = "delete"
	OpList             EnrollOp = "list"
	OpEnrollFromCamera EnrollOp = "enroll_from_camera"
)

// Valid reports whether o is a defined operation.
func (o EnrollOp) Valid() bool {
	switch o {
	case OpAdd, OpReplace, OpAddImages, OpDelete, OpList, OpEnrollFromCamera:
		return true
	}
	return false
}

// EnrollRequest is a remote enrollment request on `enroll/request`.
type EnrollRequest struct {
	RequestID string   `json:"request_id"`
	Op        EnrollOp `json:"op"`
	SubjectID string   `json:"subject_id,omitempty"`
	Name      string   `json:"name,omitempty"`
	// Images are base64 (standard alphabet) JPEG or PNG files, 1..5, for
	// add, replace and add_images.
	Images []string `json:"images,omitempty"`
	// Frames is K, the number of good camera frames to use for
	// enroll_from_camera (1..5).
	Frames int `json:"frames,omitempty"`
	Auth

	// decoded holds the decoded image bytes, filled by DecodeEnrollRequest.
	decoded [][]byte
}

// ImageData returns the decoded image files (JPEG or PNG bytes), in
// request order. It is nil unless the request came from
// DecodeEnrollRequest.
func (r *EnrollRequest) ImageData() [][]byte { return r.decoded }

// ReplyStatus is ok or error.
type ReplyStatus string

// Reply statuses.
const (
	ReplyOK    ReplyStatus = "ok"
	ReplyError ReplyStatus = "error"
)

// Code is a reply error code from a fixed enum.
type Code string

// Reply codes. Every failed request gets exactly one of these.
const (
	CodeNoFace         Code = "no_face"
	CodeSeveralFaces   Code = "several_faces"
	CodeLowQuality     Code = "low_quality"
	CodeTooLarge       Code = "too_large"
	CodeBadFormat      Code = "bad_format"
	CodeUnknownSubject Code = "unknown_subject"
	CodeSubjectExists  Code = "subject_exists"
	CodeUnauthorised   Code = "unauthorised"
	CodeReplay         Code = "replay"
	CodeBadRequest     Code = "bad_request"
	CodeBusy           Code = "busy"
	CodeTimeout        Code = "timeout"
	CodeInternal       Code = "internal"
)

// Codes lists every reply code (the schema's enum).
var Codes = []Code{
	CodeNoFace, CodeSeveralFaces, CodeLowQuality, CodeTooLarge, CodeBadFormat,
	CodeUnknownSubject, CodeSubjectExists, CodeUnauthorised, CodeReplay,
	CodeBadRequest, CodeBusy, CodeTimeout, CodeInternal,
}

// Person is one entry of a list reply.
type Person struct {
	ID        string `json:"id"`
	Name      string `json:"name,omitempty"`
	Templates int    `json:"templates"`
}

// EnrollReply answers an EnrollRequest on `enroll/reply/<request_id>`.
type EnrollReply struct {
	RequestID string      `json:"request_id"`
	Op        EnrollOp    `json:"op,omitempty"`
	Status    ReplyStatus `json:"status"`
	Code      Code        `json:"code,omitempty"`
	Message   string      `json:"message,omitempty"`
	// ImageIndex is the 0-based index of the image a per-image error
	// (no_face, several_faces, low_quality, bad_format, too_large) is about.
	ImageIndex *int      `json:"image_index,omitempty"`
	SubjectID  string    `json:"subject_id,omitempty"`
	Templates  int       `json:"templates,omitempty"`
	People     []Person  `json:"people,omitempty"`
	Time       time.Time `json:"time"`
}

// Feedback is an operator's verdict on a published event.
type Feedback struct {
	EventID  string `json:"event_id"`
	Correct  *bool  `json:"correct"`
	Operator string `json:"operator"`
	Note     string `json:"note,omitempty"`
	Auth
}
