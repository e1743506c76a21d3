// Package infer runs facegate's TensorFlow SavedModels through the TensorFlow
// C API (github.com/wamuir/graft/tensorflow): loading a model with its
// manifest, discovering and running signatures with batching, session
// options (threads, GPU), and, on top of that, face detection, alignment and
// embedding.
//
// infer is the only package that uses cgo and links libtensorflow. Packages
// that only need model metadata import infer/manifest, which is pure Go;
// capture/ and enroll/ must not import infer (a test enforces it).
package infer
