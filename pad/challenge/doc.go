// Package challenge is facegate's active presentation-attack detection: a
// random challenge (turn the head to the left or to the right) shown to the
// person at the door, and a Checker that decides from the face's keypoints
// over the following frames whether it was answered by a live head.
//
// A printed photo or a phone screen held in front of the camera can be
// moved, rotated and tilted, but it cannot turn the face it shows; a
// replayed clip can turn, but not in a direction and at a moment it cannot
// know in advance.
//
// # Measures per frame
//
// For every frame the caller passes an Observation: the time, whether the
// door's face was found, its box and its four keypoints (eyes, nose tip,
// mouth centre, as BlazeFace gives them). Two yaw estimates are read from
// the keypoints:
//
//   - Yaw, infer/quality's pose estimate: the nose tip's sideways offset
//     from the eye midpoint along the eye line, in half inter-ocular
//     distances, through the mean-face model (depth of the nose 0.45 IOD).
//   - MidlineYaw: the nose tip's offset from the midline, the line from the
//     eye midpoint to the mouth centre, in half inter-ocular distances,
//     read as a yaw with the same model (the nose is 0.40 IOD in front of
//     that line): atan(offset·0.5/0.40).
//
// On a frontal face the nose tip, the eye midpoint and the mouth centre
// are collinear. Any picture of that face (a print, a screen) that is
// moved, rotated, scaled, tilted or sheared in front of the camera is a
// plane seen through a projective map, which keeps lines straight: the
// nose stays on the midline and MidlineYaw stays at its frontal value
// whatever the motion. Yaw does not have that property (a shear of the
// picture moves the nose sideways relative to the eye line), and a rigid
// 2D motion (translation, in-plane rotation, scale) changes neither. A real
// head turn moves both (the nose sits in front of the face's plane), so a
// turn is accepted only when both estimates turn; a frame in which Yaw
// turned and MidlineYaw did not is counted as planar.
//
// # The rule
//
// A Challenge asks for a direction d (+1: yaw towards the image's right,
// which is the subject's left on an unmirrored camera; -1 the other way)
// and is issued at time t0 with a deadline t0+Timeout. The Checker takes
// the observations from t0 on, in time order:
//
//  1. The first observation with a face sets the baselines (its Yaw and
//     MidlineYaw). Its |Yaw| must be at most FrontalMax, else the result is
//     Failed/not_frontal: a turned face cannot answer a turn.
//  2. A frame turns in direction s when, for both estimates e (Yaw and
//     MidlineYaw), s·(e - baseline) ≥ Turn and s·e ≥ TurnAbs, and the two
//     estimates agree within Agree degrees: the head moved by Turn degrees
//     from where it was and now faces that side. (Agreement: on a real
//     turn both estimates read the same angle; on a picture tilted and
//     sheared hard, BlazeFace places the nose like a turned face's while
//     the midline estimate lags far behind, docs/pad.md.)
//  3. Passed: HoldFrames consecutive frames with a face turn in the asked
//     direction, the first of them at or after t0+MinReaction.
//  4. Failed/wrong_direction: HoldFrames consecutive frames with a face turn
//     the other way (with the smaller Wrong in place of Turn and TurnAbs)
//     before a pass.
//  5. Failed/too_early: a frame before t0+MinReaction already turns either
//     way: no person reads a challenge and turns that fast; a clip that was
//     turning anyway does.
//  6. Continuity, between consecutive frames with a face: the box centre
//     moves at most MaxJump box widths and the box side changes by at most
//     the factor MaxScale, else Failed/discontinuous (a picture swapped for
//     another, a different face). No face for longer than MaxGap after the
//     first one is Failed/face_lost.
//  7. At the deadline (a frame at or after it, or Expire) a pending
//     challenge fails: planar when some frame turned the asked way by Yaw
//     alone (the keypoints moved as a flat picture does), face_lost when no
//     face was ever seen, timeout otherwise.
//
// The head may come back to frontal or stay turned after the hold: either
// passes. Defaults (DefaultConfig) were calibrated on the OTB "girl"
// sequence and photos moved in front of BlazeFace (docs/pad.md).
//
// # What it does not stop
//
// A mask or a cut-out worn on the face turns with the head and passes, and
// so does a replayed clip chosen live by an attacker who has clips of both
// directions. The challenge stops prints, screens and replays that cannot
// react (docs/pad.md).
//
// # Dependencies
//
// The standard library and facegate/infer/quality (pure Go) only: no cgo,
// no TensorFlow, no MQTT (internal/archtest enforces this). The caller runs
// the detector and publishes the challenge.
package challenge
