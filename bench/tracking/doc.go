// Package tracking measures skipping detection with infer/track on real
// clips: on every frame it runs the fresh path (detect → largest face →
// align → embed, what the daemon does without tracking) and, for each
// tracker setting of a sweep, the tracked path (reuse the remembered
// detections when infer/track says so, else detect as fresh), and reports
// how often detection was skipped, how far the tracked embedding is from
// the fresh one on those frames, decision flips against a reference
// template, faces missed or added, and the time per frame of both paths
// (`facegate bench -tracking`, `make bench-tracking`).
//
// It may depend on bench, capture (clip readers), enroll (the scorer) and
// infer (an open pipeline comes from the caller); never on daemon.
package tracking
