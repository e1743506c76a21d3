// Package daemontest is test support for the harnesses that run the real
// `facegate` binary as a separate process and talk to it over MQTT
// (daemon/robust, eval/door, site/e2e): free ports and random ids, the
// environment without the caller's FACEGATE_ variables, the enrolment and
// gallery key files, a process whose output is kept and searched for a log
// line (READY), stopped with SIGTERM, and an MQTT client that sends signed
// enrolment requests and routes their replies.
//
// Tests only: it must not be imported by any production package (its
// own test checks that), and it must not depend on infer, capture or any
// package with cgo, so that the harnesses build without libtensorflow.
package daemontest
