// Package e2e holds the end-to-end tests of facegate's presentation-attack
// detection: clips made from ../shared/data (the OTB "girl" sequence, a
// photo moved, rotated and tilted in the frame, a still frame repeated) run
// through the real detector (infer, blazeface-short) and pad/challenge.
// It has no code outside its tests; the product must not depend on it.
package e2e
