package infer

import (
	"errors"
	"fmt"
	"sync"

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
// concurrent use: each call borrows its scratch memory from a pool.
type Detector struct {
	model *Model
	dec   *detect.Decoder
	size  int
	names []string
	sig   string
	in    string
	boxes string
	score string
	bufs  sync.Pool // of *detectBuf
}

// detectBuf is the scratch memory of one Detect call, pooled so that the
// per-frame path reuses it: the model input, the raw outputs and the
// resizer's filter taps.
type detectBuf struct {
	input []float32
	out   [][]float32 // boxes, scores
	rs    imageio.Resizer
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
	return d.detectPadded(img, 0)
}

// detectPadded is Detect on img framed by pad black pixels on every side,
// with the detections in the padded image's pixels. The padded image is
// never built: the letterbox reads img and treats the frame as black.
func (d *Detector) detectPadded(img *imageio.RGB, pad int) ([]detect.Detection, error) {
	out, err := d.detect([]*imageio.RGB{img}, pad)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// DetectBatch runs the detector once over several images.
func (d *Detector) DetectBatch(imgs []*imageio.RGB) ([][]detect.Detection, error) {
	return d.detect(imgs, 0)
}

func (d *Detector) detect(imgs []*imageio.RGB, pad int) ([][]detect.Detection, error) {
	if len(imgs) == 0 {
		return nil, nil
	}
	buf, _ := d.bufs.Get().(*detectBuf)
	if buf == nil {
		buf = &detectBuf{out: make([][]float32, 2)}
	}
	defer d.bufs.Put(buf)
	per := 3 * d.size * d.size
	if cap(buf.input) < per*len(imgs) {
		buf.input = make([]float32, per*len(imgs))
	}
	input := buf.input[:per*len(imgs)]
	boxes := make([]detect.Letterbox, len(imgs))
	for i, img := range imgs {
		if err := img.Check(); err != nil {
			return nil, fmt.Errorf("detect: image %d: %w", i, err)
		}
		if img.W == 0 || img.H == 0 {
			return nil, fmt.Errorf("detect: image %d is empty", i)
		}
		lb, err := d.letterbox(input[i*per:(i+1)*per], img, pad, &buf.rs)
		if err != nil {
			return nil, fmt.Errorf("detect: image %d: %w", i, err)
		}
		boxes[i] = lb
	}
	res, err := d.model.runFloat32(d.sig, map[string]Float32Batch{
		d.in: {Shape: []int64{int64(len(imgs)), int64(d.size), int64(d.size), 3}, Data: input},
	}, []string{d.boxes, d.score}, buf.out)
	if err != nil {
		return nil, fmt.Errorf("detect: %w", err)
	}
	buf.out[0], buf.out[1] = res[0].Data, res[1].Data // keep grown buffers
	out := make([][]detect.Detection, len(imgs))
	for i := range imgs {
		dets, err := d.dec.Decode(res[0].Row(i), res[1].Row(i))
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

// letterbox scales img, framed by pad black pixels, into a size x size
// float32 input, aspect kept, centred on black.
func (d *Detector) letterbox(dst []float32, img *imageio.RGB, pad int, rs *imageio.Resizer) (detect.Letterbox, error) {
	lb := detect.NewLetterbox(img.W+2*pad, img.H+2*pad, d.size)
	clear(dst)
	err := rs.Float32(dst[3*(lb.PadY*d.size+lb.PadX):], 3*d.size, img, pad, lb.W, lb.H)
	return lb, err
}
