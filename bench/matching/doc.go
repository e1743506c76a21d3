// Package matching measures 1:N matching (enroll's Matcher.Identify)
// against a memory-bandwidth bound: a plain SIMD sum over as many
// contiguous bytes, timed call for call alternately so both see the same
// machine (`facegate bench -matching`, `make bench-matching`).
//
// It is pure Go: it may depend on bench, enroll and internal/vec, never on
// infer, capture or daemon.
package matching
