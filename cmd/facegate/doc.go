// Command facegate is the face-verification gate daemon and its tools, one
// binary with subcommands:
//
//	facegate version            print the version and the TensorFlow library in use
//	facegate models [DIR]       load every model under DIR, check its manifest, print a summary
//
// More subcommands (run, enroll, eval, bench, config) arrive with the
// features they belong to.
package main
