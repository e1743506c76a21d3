// Command facegate is the face-verification gate daemon and its tools, one
// binary with subcommands:
//
//	facegate run                the gate daemon, configured from FACEGATE_* variables
//	facegate config             the effective configuration, validated, secrets redacted
//	facegate enroll OP ...      signed enrollment requests to a gate over MQTT
//	facegate watch              a gate's events as they arrive
//	facegate eval               verification and identification accuracy, calibration
//	facegate bench              speed: embedding, end to end, matching
//	facegate detect IMAGE...    faces found, as JSON lines
//	facegate models [DIR]       load every model under DIR, check its manifest, print a summary
//	facegate version            the version and the TensorFlow library in use
package main
