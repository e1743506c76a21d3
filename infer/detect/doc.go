// Package detect decodes SSD face detectors such as BlazeFace: anchor
// generation from the model manifest, box and keypoint decoding, weighted
// non-maximum suppression, and the letterbox mapping between an image and the
// detector's square input.
//
// It is pure Go: running the detector's graph is infer's job, so this package
// must not depend on cgo or TensorFlow.
package detect
