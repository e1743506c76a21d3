// Package align cuts the aligned face chips facegate's embedders take: it
// estimates the similarity transform (scale, rotation, translation; never
// a reflection) that maps a face's detector keypoints onto an embedder's
// template (manifest.Alignment: dlib's 150 px chip, the VGGFace2 224 px
// crop) and warps the image with bilinear sampling straight into the
// embedder's float32 HWC batch buffer.
//
// # Coordinates
//
// Keypoints, template points and chip coordinates are all continuous image
// coordinates: pixel (i, j) covers [i, i+1) × [j, j+1) and its centre is
// at (i+0.5, j+0.5). This is how the detector reports keypoints
// (normalised coordinates times the image size). Chip pixel (i, j) takes
// the colour of the source at T⁻¹(i+0.5, j+0.5), interpolated bilinearly
// between the four source pixel centres around it. dlib's
// extract_image_chip maps integer pixel coordinates instead (pixel centre
// at (i, j)); a template measured in dlib's convention from dlib's own
// landmarks is converted with Template.Offset(0.5), which makes both
// conventions produce the same chip.
//
// Outside the source image the colour is black (0), as in dlib's
// extract_image_chip; bilinear taps that fall outside read 0, so the
// border fades over one pixel rather than being cut. Up to 2 source
// pixels per chip pixel the chip is plain bilinear samples, exactly like
// dlib's extract_image_chip (TestMatchesDlib compares with chips dlib
// 20.0.1 cut: mean difference under half a grey level, dlib truncates).
// When the face is bigger than that, each chip pixel averages k×k
// bilinear samples spread over its footprint (k = the scale rounded, at
// most 8) instead of aliasing; dlib reaches the same goal with an image
// pyramid (pyramid_down<2>), so there the two differ slightly.
//
// # Dependencies
//
// The standard library, facegate/infer/imageio and facegate/infer/manifest
// only: no cgo, no TensorFlow (internal/archtest enforces this), so the
// package builds with CGO_ENABLED=0.
package align
