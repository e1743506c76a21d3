// Package enroll holds the gallery of enrolled people and matches probe
// embeddings against it: 1:1 verification of a claimed subject and 1:N
// identification with best, second best and margin, scored as the model's
// manifest says (Euclidean distance or cosine similarity on L2-normalised
// embeddings, and the Siamese head's probability).
//
// enroll is pure Go. It reads model metadata through infer/manifest and must
// never import infer or link TensorFlow (internal/archtest enforces it), so
// the gallery and its tests build anywhere.
package enroll
