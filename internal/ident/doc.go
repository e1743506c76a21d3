// Package ident holds the one validation of identifiers and display text
// that every layer shares: the MQTT decoders, the request signer, the
// gallery store. A value accepted by one is accepted by all, and each
// refusal names the offending character correctly (a rune, never a byte of
// its UTF-8 encoding).
//
// It depends on the standard library only.
package ident
