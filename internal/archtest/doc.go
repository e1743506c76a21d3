// Package archtest holds no code, only tests that keep facegate's
// architecture honest: cgo and TensorFlow stay in infer/, data flows one way
// (capture → infer → enroll → daemon), and every package says what it is for.
package archtest
