// Package track decides when a frame may reuse the previous frame's face
// detections instead of running the detector again: a Tracker remembers the
// last real detections (boxes and keypoints) of a stream and a small grey
// thumbnail of each face box, and on the next frames answers "reuse" only
// while every face still looks the same where it was and the detections
// are young enough.
//
// # The rule
//
// After a real detection, Update stores the detections, the frame's size
// and time, and for every face box (rounded outwards to whole pixels and
// clipped to the frame) a Size×Size thumbnail: the mean BT.601 luma
// (0..255) of each cell of an even grid over the box, averaged over at most
// 8×8 sample points per cell. Check on a later frame says reuse when all of
// these hold:
//
//   - tracking is enabled (Config.Threshold > 0) and the last detection
//     found at least one face, every box at least Size pixels on each side
//     inside the frame (an empty scene is never reused: only the detector
//     can see someone arrive);
//   - the frame has the same size as the detection frame;
//   - fewer than Config.MaxFrames frames have reused these detections, so
//     the detector runs at least once every MaxFrames+1 frames;
//   - when Config.MaxAge > 0, the frame's time is less than MaxAge after the
//     detection frame's time (and not before it);
//   - for every remembered face, the mean absolute difference between the
//     thumbnail of the same box in the new frame and the thumbnail stored
//     at detection is below Config.Threshold luma levels.
//
// The comparison is always against the thumbnail of the detection frame,
// never the previous reused frame, so slow drift adds up and forces a new
// detection. Brightness is not normalised: a lighting change above the
// threshold also forces a detection, which is the conservative choice.
//
// # Why this is safe for a door
//
// Tracking only replaces where the face is, never who it is: the caller
// still aligns and embeds the face from the current frame's pixels with the
// reused keypoints. A wrong reuse can at worst misalign the chip of a face
// that moved (a worse embedding, so a possible false reject, which the
// threshold keeps small); it cannot carry an identity from one frame to the
// next. The bounded age (MaxFrames, MaxAge) bounds how long a face that
// appears outside the remembered boxes (a second person walking in) can go
// unseen: at most MaxFrames frames, and at most MaxAge. A new face inside a
// remembered box changes its thumbnail and forces a detection at once.
//
// A Tracker is not safe for concurrent use: one per frame stream.
//
// # Dependencies
//
// The standard library, facegate/infer/detect and facegate/infer/imageio
// only: no cgo, no TensorFlow (internal/archtest enforces this).
package track
