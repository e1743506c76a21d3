// Package imagetest is test support for tests that read image files into
// infer/imageio's RGB (the PAD tests of infer and pad/e2e).
//
// Tests only: no production package may import it (internal/daemontest's
// test checks that). It depends on infer/imageio and the standard library
// only, so it never links TensorFlow.
package imagetest
