// Package memory measures resident memory over many frames of detect +
// align + embed on one image: RSS and the Go heap sampled every N frames,
// and the growth after the first thousand (`facegate bench -memory`,
// `make bench-memory`).
//
// It may depend on bench, eval (pairs files) and infer (an open pipeline
// comes from the caller); never on capture or daemon.
package memory
