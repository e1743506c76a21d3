// Package robust is the robustness suite: it starts the real facegate
// binary (embedded broker, a folder camera, real models) and probes it as
// an operator and an attacker would: malformed, oversized, forged,
// replayed and flooding requests, a restart, a full disk, bad
// configurations. Each probe asserts the reply, that the daemon is still
// up and that the gallery is unchanged where it should be, and the suite
// writes a table of probe, expected and observed results.
//
// The tests carry the build tag "robust" and run with `make robust` (part
// of `make test`), which builds the binary first. The package has no
// non-test code and nothing may depend on it.
package robust
