// Package decision is the one place that says how facegate decides at the
// door, shared by the daemon (live) and eval (offline, to measure and
// calibrate it), so what is measured is what runs.
//
// It turns each embedder's raw score into a z-score against that
// embedder's impostor distribution ([Tower]), fuses the z-scores of the
// towers in use into one logit of "same person" ([Head], a logistic
// regression fitted per subset of towers, so either tower can be turned
// off), aggregates a visit's frames per enrolled identity as a
// quality-weighted mean of the fused logit ([Evidence]), and decides
// sequentially, frame by frame, against a per-visit threshold derived for
// the gallery size N and a target false-positive identification rate per
// visit (FPIR), with a margin over the second-best identity ([Rule],
// [Calibration.Threshold]). docs/decision.md explains the model.
//
// decision is pure Go and must depend on the standard library only
// (internal/archtest enforces it): no infer, no enroll, no eval, no MQTT.
package decision
