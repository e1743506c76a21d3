package infer

import (
	"errors"
	"fmt"

	"github.com/facegate/facegate/infer/detect"
	"github.com/facegate/facegate/infer/imageio"
	"github.com/facegate/facegate/infer/manifest"
)

// DetectorConfig tunes face detection.
type DetectorConfig struct {
	// MinScore drops candidates below this probability (default 0.5).
	MinScore float64
	// IoU merges overlapping candidates in weighted NMS (default 0.3).
	IoU float64
	// MinFaceFrac drops faces whose box is smaller than this fraction of the
	// image's longer side (0 keeps all).
	MinFaceFrac float64
}

func (c DetectorConfig) withDefaults() DetectorConfig {
	if c.MinScore == 0 {
		c.MinScore = 0.5
	}
	if c.IoU == 0 {
		c.IoU = 0.3
	}
	return c
}

// ErrNotDetector is returned when a model is not a face detector.
var ErrNotDetector = errors.New("not a detector model")

// Detector finds faces with a BlazeFace-style SavedModel. It is safe for
// concurrent use.
type Detector struct {
	model *Model
	dec   *detect.Decoder
	size  int
	names []string
	sig   string
	in    string
	boxes string
	score string
}

// NewDetector wraps a loaded detector model.
func NewDetector(m *Model, cfg DetectorConfig) (*Detector, error) {
	man := m.Manifest()
	if man.Task != manifest.TaskDetector || man.Detector == nil {
		return nil, fmt.Errorf("%w: %s is a %s", ErrNotDetector, man.Name, man.Task)
	}
	cfg = cfg.withDefaults()
	dec, err := detect.NewDecoder(man, cfg.MinScore, cfg.IoU)
	if err != nil {
		return nil, err
	}
	d := &Detector{
		model: m, dec: dec, size: man.Input.Width, names: man.Detector.KeypointKeys,
		sig: man.Input.Signature, in: man.Input.Tensor,
		boxes: man.Detector.BoxesOutput, score: man.Detector.ScoresOutput,
	}
	return d, nil
}

// Model is the detector's model.
func (d *Detector) Model() *Model { return d.model }

// KeypointNames names the keypoints of every detection, in order.
func (d *Detector) KeypointNames() []string { return d.names }

// InputSize is the side of the detector's square input.
func (d *Detector) InputSize() int { return d.size }

// Detect finds the faces in img, best first, in image pixels.
func (d *Detector) Detect(img *imageio.RGB) ([]detect.Detection, error) {
	out, err := d.DetectBatch([]*imageio.RGB{img})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// DetectBatch runs the detector once over several images.
func (d *Detector) DetectBatch(imgs []*imageio.RGB) ([][]detect.Detection, error) {
	if len(imgs) == 0 {
		return nil, nil
	}
	per := 3 * d.size * d.size
	input := make([]float32, per*len(imgs))
	boxes := make([]detect.Letterbox, len(imgs))
	for i, img := range imgs {
		if err := img.Check(); err != nil {
			return nil, fmt.Errorf("detect: image %d: %w", i, err)
		}
		if img.W == 0 || img.H == 0 {
			return nil, fmt.Errorf("detect: image %d is empty", i)
		}
		lb, err := d.letterbox(input[i*per:(i+1)*per], img)
		if err != nil {
			return nil, fmt.Errorf("detect: image %d: %w", i, err)
		}
		boxes[i] = lb
	}
	res, err := d.model.RunFloat32(d.sig, map[string]Float32Batch{
		d.in: {Shape: []int64{int64(len(imgs)), int64(d.size), int64(d.size), 3}, Data: input},
	}, d.boxes, d.score)
	if err != nil {
		return nil, fmt.Errorf("detect: %w", err)
	}
	out := make([][]detect.Detection, len(imgs))
	for i := range imgs {
		dets, err := d.dec.Decode(res[d.boxes].Row(i), res[d.score].Row(i))
		if err != nil {
			return nil, fmt.Errorf("detect: decode image %d: %w", i, err)
		}
		for j := range dets {
			dets[j] = boxes[i].MapToImage(dets[j])
		}
		out[i] = dets
	}
	return out, nil
}

// letterbox scales img into a size x size float32 input, aspect kept,
// centred on black.
func (d *Detector) letterbox(dst []float32, img *imageio.RGB) (detect.Letterbox, error) {
	lb := detect.NewLetterbox(img.W, img.H, d.size)
	scaled := img
	if lb.W != img.W || lb.H != img.H {
		var err error
		if scaled, err = imageio.Resize(img, lb.W, lb.H); err != nil {
			return lb, err
		}
	}
	clear(dst)
	for y := 0; y < lb.H; y++ {
		row := scaled.Pix[3*y*lb.W : 3*(y+1)*lb.W]
		o := dst[3*((y+lb.PadY)*d.size+lb.PadX):]
		for i, v := range row {
			o[i] = float32(v)
		}
	}
	return lb, nil
}
