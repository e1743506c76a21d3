// Package metrics is facegate's Prometheus side: the collectors of one
// running gate (frames, faces, decisions by outcome, per-stage latency
// histograms, visit length, gallery size, outbox depth, MQTT and camera
// state, enrolment results, model load information), each on a registry of
// its own (never Prometheus's global one), and a small HTTP server that
// serves them on /metrics with /healthz (the process is up) and /readyz
// (models loaded and the camera delivering).
//
// The daemon calls a small API (FrameAnalysed, ObserveStage, Decision,
// Enrollment, ...) and hands it callbacks for the values it already keeps
// (gallery size, outbox depth, camera counters), which are read at scrape
// time rather than counted twice. Label values come from fixed sets; a
// person's id or name is never a label.
//
// metrics depends on the standard library and prometheus/client_golang
// only: it must not import infer (cgo), enroll, capture or any other
// facegate package; the daemon converts its values into the plain structs
// declared here.
package metrics
