// Package mqtt is facegate's MQTT interface: payload types and strict
// decoders for every topic, a paho client wrapper (TLS, username/password,
// persistent session, last will, resubscription in the on-connect handler),
// an event publisher backed by a durable on-disk outbox (package outbox),
// Home Assistant discovery, the accuracy statistics published on `stats`,
// and an embedded mochi-mqtt broker for single-door sites.
//
// The wire contract is documented in docs/mqtt.md and docs/asyncapi.yaml;
// the JSON Schemas in docs/schemas/ are checked against real payloads by the
// tests of this package.
//
// It is pure Go: it must not import infer/ (cgo, TensorFlow) nor any other
// facegate package that does; callers hand it plain values.
package mqtt
