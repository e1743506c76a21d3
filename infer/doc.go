// Package infer runs facegate's TensorFlow SavedModels through the TensorFlow
// C API (github.com/wamuir/graft/tensorflow): loading a model with its
// manifest, discovering and running signatures with batching, session
// options (threads, GPU), and, on top of that, face detection, alignment and
// embedding.
//
// TensorFlow's own logging is quiet unless asked for (tflog.go): a program
// that links infer executes itself once more at start, before TensorFlow
// loads, with TF_CPP_MIN_LOG_LEVEL=2 when that is unset and
// FACEGATE_LOG_LEVEL is not debug (tflog_linux.c), and the first model load
// keeps abseil's INFO lines off stderr.
//
// infer is the only package that uses cgo and links libtensorflow. Packages
// that only need model metadata import infer/manifest, which is pure Go;
// capture/ and enroll/ must not import infer (a test enforces it).
package infer
