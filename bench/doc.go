// Package bench holds what facegate's benchmarks share: where a run
// happened (Machine), summaries of timings (Stats), process CPU time and
// resident memory, random galleries, and writing a report as JSON. Start
// here for "how fast is it": each benchmark is a subpackage with a Config
// and a Run method, called by `facegate bench` (cmd/facegate only parses
// flags and wires them):
//
//	bench/embed     embedding latency and throughput, Go against Python TensorFlow
//	bench/e2e       per face end to end (read → detect → align → embed → 1:N match), against the face_recognition peer
//	bench/matching  1:N matching against a memory-bandwidth bound
//	bench/memory    resident memory over many frames
//	bench/tracking  skipping detection with infer/track on real clips
//
// The folder also holds the Python side of the comparisons (python_tf.py,
// the peers) and bench/gpu. docs/benchmarks.md reports the figures.
//
// bench itself is pure Go: it must not import infer (or anything that
// links TensorFlow), capture or daemon; it may import enroll (galleries),
// eval (pairs files) and internal/vec. Nothing in the daemon may import
// bench or its subpackages.
package bench
