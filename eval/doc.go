// Package eval measures how well a face verifier separates genuine pairs
// from impostor pairs, and how well it identifies people from one to five
// enrolment photos: the offline accuracy of `facegate eval`. Start here
// for "how do I measure accuracy".
//
// It covers the LFW View-2 protocol (pairs files, fold assignment, k-fold
// accuracy with the threshold chosen on the other folds), ROC, AUC, EER,
// TAR at a fixed FAR, FNMR at a fixed FMR, failure-to-acquire accounting,
// calibration of decision thresholds by target false-match rate (written
// into the model manifest as [manifest.Threshold]), closed- and open-set
// identification, scores files (to evaluate peers and train the Siamese
// head), and reports as a text table, JSON and ROC/DET plots
// (gonum.org/v1/plot). docs/evaluation.md states the protocol and every
// definition.
//
// The runs (VerifyConfig, IdentifyConfig, ScoresFileConfig, each with a
// Run method) take images through an [Embedder]; eval/pipeline is the one
// over infer's face pipeline. eval itself is pure Go: it must not import
// infer (or anything that links TensorFlow), enroll's gallery, capture or
// daemon; it may import infer/manifest, which is pure Go. Nothing in the
// daemon may import eval.
package eval
