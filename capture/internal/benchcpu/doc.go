// Package benchcpu reports CPU time per benchmark iteration. facegate's
// development and CI machines are shared, so wall-clock ns/op swings with
// other jobs; the calling thread's CPU time is a steadier figure for
// docs/benchmarks.md. Used only by benchmarks.
//
// Dependencies: golang.org/x/sys/unix and the standard library only; it must
// not use cgo or import facegate/infer or TensorFlow.
package benchcpu
