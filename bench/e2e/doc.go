// Package e2e measures facegate per face end to end: read + decode →
// detect → primary face → align → embed → 1:N match against a random
// gallery, one image at a time, wall and CPU time per stage, and sets it
// beside the face_recognition peer's timing file on the same images
// (`facegate bench -e2e`, `make bench-e2e`).
//
// It may depend on bench, eval (pairs files), enroll (the matcher) and
// infer (an open pipeline comes from the caller); never on capture or
// daemon.
package e2e
