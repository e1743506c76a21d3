// Package site replicates the gallery of enrolled people between the gates
// of one site over NATS JetStream, and gathers their access events.
//
// Gallery changes (enrol, add templates, remove) are appended as Change
// records to one replicated stream (R3 on a 3-node cluster) by a Publisher,
// with the change id as the JetStream message id so a retried publish is
// stored once. Each gate runs a Replicator: an ordered consumer starting
// after the last sequence its local gallery applied, which verifies every
// change (the operator's request signature through a Verifier, the
// publishing gate's Ed25519 signature, the request's timestamp against the
// time the stream stored it) and hands it to an Applier that stores the
// change and its sequence in one transaction. Refused changes are reported
// and skipped, never applied. A Forwarder queues access events in a durable
// outbox and appends them to the site's event stream, deduplicated by event
// id, whenever NATS is reachable. StartServer embeds a nats-server (cluster
// member or standalone, JetStream on, TLS and passwords from files). Each
// Replicator writes its applied sequence to a key-value bucket that
// ReadStatus reports with the lag of every gate.
//
// Design, failover and measurements: docs/site.md.
//
// site is pure Go. It must not import daemon (the daemon implements
// Applier and Verifier), infer, capture or anything with cgo; templates are
// sealed with enroll/store's scheme and events queued with
// daemon/mqtt/outbox, a standard-library-only package.
package site
