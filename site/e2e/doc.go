// Package e2e is the site's end-to-end check (build tag site_e2e, `make
// site-e2e`): three NATS members (`facegate site serve`) and three or four
// gates (`facegate run` on a folder camera with the real models) as
// separate processes on loopback, probed over MQTT and NATS for the
// replication delay, a stream leader killed with -9, a gate stopped and
// killed while catching up, a new gate joining a large site, refused
// changes and a site cut off, then every gate's gallery file compared.
//
// It has no code outside its test; it drives the facegate binary and must
// not import daemon (it reads galleries with enroll/store and talks to
// NATS with site and nats.go, as an operator's tools would).
package e2e
