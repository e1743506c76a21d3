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
// verification could not be completed (see Event.Reason). Ambiguous means
// a 1:N visit's best identity cleared the threshold without beating the
// second-best by the calibrated margin: nobody is let in, and
// Event.Candidates names both.
const (
	DecisionGranted   Decision = "granted"
	DecisionDenied    Decision = "denied"
	DecisionUnknown   Decision = "unknown"
	DecisionAmbiguous Decision = "ambiguous"
	// DecisionPresentationAttack: the visit's identity cleared but it
	// failed presentation-attack detection (Event.PAD says how).
	DecisionPresentationAttack Decision = "presentation_attack"
)

// Valid reports whether d is one of the defined decisions.
func (d Decision) Valid() bool {
	return d == DecisionGranted || d == DecisionDenied || d == DecisionUnknown || d == DecisionAmbiguous || d == DecisionPresentationAttack
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
	// Score is the match score; HigherIsMatch gives its direction (true
	// for a probability, logit or cosine similarity, false for a
	// distance). 1:N: the visit's fused evidence for the subject (or best
	// candidate), a logit of "same person" aggregated over the visit's
	// frames, against Threshold, the per-visit threshold for GallerySize
	// and TargetFPIR. 1:1: the first tower's score against its
	// per-comparison threshold.
	Score         float64 `json:"score"`
	Threshold     float64 `json:"threshold"`
	HigherIsMatch bool    `json:"higher_is_match"`
	// ThresholdFMR is the false-match rate per comparison the threshold was
	// calibrated for (1:1); 0 on 1:N events, whose threshold is per visit
	// (TargetFPIR).
	ThresholdFMR float64 `json:"threshold_fmr"`
	// GallerySize is the number of people enrolled the threshold was set
	// for and TargetFPIR the false-positive identification rate per visit
	// it targets (1:N only).
	GallerySize *int    `json:"gallery_size,omitempty"`
	TargetFPIR  float64 `json:"target_fpir,omitempty"`
	// Margin is the subject's (best candidate's) lead in fused logit over
	// the second-best identity, RequiredMargin what a grant needs (1:N;
	// Margin absent with a single candidate).
	Margin         *float64 `json:"margin,omitempty"`
	RequiredMargin *float64 `json:"required_margin,omitempty"`
	// Towers are each embedder's score behind Score, for the subject (or
	// best candidate): a quality-weighted mean over the visit's frames.
	Towers []TowerScore `json:"towers,omitempty"`
	// Candidates are the two closest identities of an ambiguous decision.
	Candidates []Candidate `json:"candidates,omitempty"`
	// Visit is the 1:N decision's visit.
	Visit *Visit `json:"visit,omitempty"`
	// PAD is the presentation-attack detection result (absent with
	// FACEGATE_PAD=off).
	PAD       *PAD     `json:"pad,omitempty"`
	Face      *Box     `json:"face,omitempty"`
	Quality   *float64 `json:"quality,omitempty"`
	LatencyMS float64  `json:"latency_ms"`
	Model     ModelRef `json:"model"`
	// Image is the aligned face crop as base64 JPEG; only present when the
	// operator enabled images in events (off by default).
	Image string `json:"image,omitempty"`
}

// TowerScore is one embedder's raw score: a distance or a cosine
// similarity, as HigherIsMatch says.
type TowerScore struct {
	Model         string  `json:"model"`
	Score         float64 `json:"score"`
	HigherIsMatch bool    `json:"higher_is_match"`
}

// Candidate is an identity considered by a decision, with its fused
// visit score (a logit, higher is more alike).
type Candidate struct {
	ID     string       `json:"id"`
	Name   string       `json:"name,omitempty"`
	Score  float64      `json:"score"`
	Towers []TowerScore `json:"towers,omitempty"`
}

// Visit is one face at the door from its appearance to its disappearance,
// as far as a 1:N decision saw it.
type Visit struct {
	ID uint64 `json:"id"`
	// Frames is how many frames passed the quality gate and make up the
	// evidence; FramesSeen how many showed the face.
	Frames     int `json:"frames"`
	FramesSeen int `json:"frames_seen"`
	// DecisionMS is the time from the capture of its first good frame to
	// the decision's event (the door's response time).
	DecisionMS float64 `json:"decision_ms"`
	// End says why an undecided visit ended: gone (the face left), moved
	// (another face took its place), timeout; absent when decided while the
	// face was there.
	End string `json:"end,omitempty"`
	// Rejected counts the visit's frames with the face that failed the
	// quality gate, by check failed (reason failure_to_acquire: every
	// frame); "not_embedded" for a face that passed but was not embedded.
	Rejected map[string]int `json:"rejected,omitempty"`
	// LooksCarried: looks of the budget already used by the visits this
	// one continues (faces that jumped in within the gap, docs/decision.md).
	LooksCarried int `json:"looks_carried,omitempty"`
}

// PAD results (PAD.Decision).
const (
	PADBonaFide   = "bona_fide"   // every method in force passed
	PADAttack     = "attack"      // a method failed
	PADNotChecked = "not_checked" // decided without it (no identity cleared, a 1:1 claim denied)
)

// PAD is a decision's presentation-attack detection result.
type PAD struct {
	// Method is passive, challenge or both (FACEGATE_PAD).
	Method string `json:"method"`
	// Score is the median MiniFASNet p_real over Frames scored frames of
	// the visit, Threshold the p_real a grant needs (calibrated for
	// TargetBPCER); absent in challenge mode or when no frame was scored.
	Score       *float64 `json:"score,omitempty"`
	Threshold   *float64 `json:"threshold,omitempty"`
	TargetBPCER float64  `json:"target_bpcer,omitempty"`
	Frames      int      `json:"frames"`
	// Decision: bona_fide, attack or not_checked.
	Decision  string            `json:"decision"`
	Challenge *ChallengeOutcome `json:"challenge,omitempty"`
}

// ChallengeOutcome is the result of the challenge a visit was given.
type ChallengeOutcome struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// Status is passed, failed or pending (the visit was decided on
	// passive PAD first); Reason says why it failed.
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	// LatencyMS is from the challenge to the frame that decided it; Peak
	// the largest turn in the asked direction, in degrees.
	LatencyMS float64 `json:"latency_ms,omitempty"`
	Peak      float64 `json:"peak_deg"`
}

// Challenge is published (QoS 1, not retained) on <prefix>/<device>/challenge
// when a visit must answer a challenge: the door's display or speaker
// shows Kind until Deadline.
type Challenge struct {
	ID       string    `json:"id"`
	DeviceID string    `json:"device_id"`
	Kind     string    `json:"kind"` // turn_left or turn_right, the subject's own sides
	Issued   time.Time `json:"issued"`
	Deadline time.Time `json:"deadline"`
	Visit    uint64    `json:"visit"` // 0 for a 1:1 claim's challenge
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
	// OpGet returns what is stored about one person (no embeddings): the
	// privacy export.
	OpGet EnrollOp = "get"
)

// Valid reports whether o is a defined operation.
func (o EnrollOp) Valid() bool {
	switch o {
	case OpAdd, OpReplace, OpAddImages, OpDelete, OpList, OpEnrollFromCamera, OpGet:
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
	// Faces chooses the face to enrol in an image where the automatic
	// choice was refused as ambiguous (several_faces): by the index of the
	// reply's faces list or by a box. At most one choice per image.
	Faces []FaceChoice `json:"faces,omitempty"`
	// Force enrols even when a photo's face matches another enrolled
	// person (duplicate) or the photos do not match each other or the
	// person's enrolled photos (conflict); the gate logs it as an audit
	// entry with the key id.
	Force bool `json:"force,omitempty"`
	Auth

	// decoded holds the decoded image bytes, filled by DecodeEnrollRequest.
	decoded [][]byte
}

// FaceChoice names the face to enrol in image Image: Index into the
// reply's faces list of that image (most prominent first), or the face
// overlapping Box best.
type FaceChoice struct {
	Image int  `json:"image"`
	Index *int `json:"index,omitempty"`
	Box   *Box `json:"box,omitempty"`
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
	// CodeDuplicate: a photo's face matches another enrolled person above
	// the 1:1 threshold (one person under two ids); force overrides.
	CodeDuplicate Code = "duplicate"
	// CodeConflict: the photos do not match each other, or a photo added
	// to a person does not match their enrolled photos (two people under
	// one id); force overrides.
	CodeConflict Code = "conflict"
)

// Codes lists every reply code (the schema's enum).
var Codes = []Code{
	CodeNoFace, CodeSeveralFaces, CodeLowQuality, CodeTooLarge, CodeBadFormat,
	CodeUnknownSubject, CodeSubjectExists, CodeUnauthorised, CodeReplay,
	CodeBadRequest, CodeBusy, CodeTimeout, CodeInternal, CodeDuplicate, CodeConflict,
}

// Person is one entry of a list reply.
type Person struct {
	ID        string `json:"id"`
	Name      string `json:"name,omitempty"`
	Templates int    `json:"templates"`
	// Photos are the sha256 (lowercase hex) of the photo files the person
	// was enrolled from: a bulk import skips a person enrolled from the
	// same photos.
	Photos []string `json:"photos,omitempty"`
}

// FaceFound is one face in an enrollment photo, as a reply lists them
// (most prominent first) so that an operator can choose one.
type FaceFound struct {
	Box        Box     `json:"box"`
	Prominence float64 `json:"prominence"`
}

// PhotoReport is the gate's judgement of one enrollment photo.
type PhotoReport struct {
	Index int `json:"index"`
	// Verdict: accepted, borderline (accepted with a warning) or refused.
	Verdict string `json:"verdict"`
	// Quality is 1 when every measure is within its accept limit, 0 when
	// one is past its refuse limit (docs/enrollment.md).
	Quality float64     `json:"quality"`
	Reasons []string    `json:"reasons,omitempty"`
	Faces   []FaceFound `json:"faces,omitempty"`
	Chosen  *int        `json:"chosen,omitempty"`
	SHA256  string      `json:"sha256,omitempty"`
}

// StoredPhoto is what the gate keeps about one enrollment photo (never the
// photo itself).
type StoredPhoto struct {
	SHA256  string    `json:"sha256"`
	Verdict string    `json:"verdict,omitempty"`
	Quality float64   `json:"quality"`
	Added   time.Time `json:"added"`
}

// PersonRecord is everything stored about a person except the embeddings
// (op get): the privacy export.
type PersonRecord struct {
	ID        string        `json:"id"`
	Name      string        `json:"name,omitempty"`
	Created   time.Time     `json:"created"`
	Updated   time.Time     `json:"updated"`
	Templates int           `json:"templates"`
	Models    []string      `json:"models,omitempty"`
	Source    string        `json:"source,omitempty"` // kind, key id and request id of the last change
	Photos    []StoredPhoto `json:"photos,omitempty"`
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
	ImageIndex *int     `json:"image_index,omitempty"`
	SubjectID  string   `json:"subject_id,omitempty"`
	Templates  int      `json:"templates,omitempty"`
	People     []Person `json:"people,omitempty"`
	// Photos judges each photo of the request; Warnings repeat, in words,
	// why borderline photos were accepted.
	Photos   []PhotoReport `json:"photos,omitempty"`
	Warnings []string      `json:"warnings,omitempty"`
	// ConflictWith names the enrolled person a duplicate matched.
	ConflictWith string        `json:"conflict_with,omitempty"`
	Person       *PersonRecord `json:"person,omitempty"`
	Time         time.Time     `json:"time"`
}

// Feedback is an operator's verdict on a published event.
type Feedback struct {
	EventID  string `json:"event_id"`
	Correct  *bool  `json:"correct"`
	Operator string `json:"operator"`
	Note     string `json:"note,omitempty"`
	Auth
}
