// Package pipeline is eval's [eval.Embedder] over infer's face pipeline:
// every image of an evaluation goes through decode → detect → primary face
// → align → embed, with the embedder batched across images, as `facegate
// eval` runs it.
//
// It is the only part of the evaluation that links TensorFlow (through
// infer). It may depend on eval and infer; it must not depend on enroll's
// gallery, capture or daemon, and nothing outside cmd/ may import it.
package pipeline
