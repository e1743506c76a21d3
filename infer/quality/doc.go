// Package quality measures how usable a detected face is for
// verification: face size (inter-ocular distance in pixels), sharpness
// (variance of the Laplacian), head pose estimated from the keypoints
// (yaw, pitch, roll in degrees) and exposure (mean luma and clipped
// fractions of the face box). Assess reports every measure with the list
// of checks that failed against configurable Thresholds: a face that
// fails is reported as failing, never silently dropped; the caller decides
// what to do with it (skip it for a decision, tell the enrolling user why).
//
// # Methods
//
// Sharpness is the variance of the 3x3 Laplacian (0 1 0 / 1 -4 1 / 0 1 0,
// OpenCV's default) of the BT.601 luma (0..255), over the interior of a
// region. On an aligned chip (SharpnessOfChip) the region is the central
// 60% of the chip, where the face is, so values are comparable between
// faces of any size; without a chip Assess resamples the face box to
// 112x112 first (area averaging when shrinking).
//
// Pose uses a rigid mean-face model in units of the inter-ocular distance
// (IOD): eyes at (±0.5, 0, 0), nose tip 0.56 below the eye line and 0.45 in
// front of it, mouth centre 1.14 below and 0.10 in front (vertical ratios
// from dlib's and ArcFace's alignment templates, depths from common 3D
// mean-face models), posed by pitch (about the ear-to-ear axis), then yaw
// (about the camera's vertical axis), then roll (in the image plane), and
// projected orthographically. For such a face the estimates are exact:
//
//   - roll is the angle of the line from the right eye (image left) to the
//     left eye, positive when the image-right eye is lower (clockwise on
//     screen);
//   - in the frame of the eye line, the nose's height between the eye line
//     and the mouth, r, gives tan(pitch) = (r·1.14 - 0.56) / (0.45 - r·0.10);
//     positive pitch: looking down;
//   - the nose's sideways offset from the eye midpoint in units of half the
//     projected IOD is (d/0.5)·tan(yaw), d = 0.45·cos(pitch) - 0.56·sin(pitch)
//     the pitched nose depth (floored at 0.15); positive yaw: the face turns
//     towards the image's right (the subject's left).
//
// Pose from five keypoints is approximate (a few degrees on frontal faces,
// more at large angles or with unusual faces); it gates out clearly turned
// faces, it does not measure head pose precisely.
//
// Exposure is the mean BT.601 luma of the face box and the fractions of its
// pixels at or below 5 (crushed) and at or above 250 (blown out).
//
// # Dependencies
//
// The standard library and facegate/infer/imageio only: no cgo, no
// TensorFlow (internal/archtest enforces this).
package quality
