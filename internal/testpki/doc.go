// Package testpki issues throwaway X.509 certificates for tests: a CA, and
// server and client certificates for 127.0.0.1 signed by it, valid for an
// hour. Tests only; nothing in the product imports it.
package testpki
