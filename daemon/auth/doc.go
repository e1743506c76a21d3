// Package auth authenticates enrollment requests: a signature over a
// canonical form of the request (key id, timestamp, nonce, operation,
// request id, SHA-256 of the body), HMAC-SHA256 under a shared secret or
// Ed25519 under an operator's private key (gates then hold only the public
// key), as the type of the key named by the key id says; a timestamp
// window against stale requests and a bounded nonce cache against replay. It also loads key rings
// from a key file or a systemd credential ($CREDENTIALS_DIRECTORY), never
// from the environment, and keeps secrets out of logs: Key and KeyRing
// format and log as redacted values.
//
// The canonical form, key file formats and sizing are specified in
// docs/security.md; Canonical is the single implementation of the former.
// Errors map onto the reply codes "unauthorised" and "replay" through Code.
//
// auth is pure Go and depends only on the standard library; it must not
// import infer, capture or enroll.
package auth
