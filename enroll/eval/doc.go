// Package eval measures how well a face verifier separates genuine pairs
// from impostor pairs, and how well it identifies people from one to five
// enrolment photos. It is the scoring half of `facegate eval`: the caller
// runs detect, align and embed on every image and hands eval the resulting
// scores; eval does the statistics.
//
// It covers the LFW View-2 protocol (pairs files, fold assignment, k-fold
// accuracy with the threshold chosen on the other folds), ROC, AUC, EER,
// TAR at a fixed FAR, FNMR at a fixed FMR, failure-to-acquire accounting,
// calibration of decision thresholds by target false-match rate (written
// into the model manifest as [manifest.Threshold]), closed- and open-set
// identification, and reports as a text table, JSON and SVG ROC/DET plots.
// docs/evaluation.md states the protocol and every definition.
//
// eval is pure Go (standard library only). It must not import infer or
// anything that links TensorFlow; it may import infer/manifest, which is
// pure Go.
package eval
