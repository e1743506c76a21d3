// Package manifest reads, checks and writes the JSON manifest that sits beside
// every facegate SavedModel (facegate.json): task, input spec, preprocessing
// the graph already does, embedding dimension and metric, calibrated
// thresholds by target false-match rate, alignment template, detector anchor
// layout, provenance, licence and the sha256 of the weights.
//
// It is pure Go and must not depend on cgo or TensorFlow, so that enroll/ and
// daemon/ can read thresholds and metrics without linking libtensorflow.
package manifest
