// Package mqtttest is test support for the MQTT tests of daemon/mqtt and
// site (the daemon's client against mochi-mqtt, Mosquitto and nats-server):
// an observer client that records what it receives, a hand-made MQTT 3.1.1
// CONNECT for packets no client library would send, running a client's
// Run loop for the length of a test, and the tally of the sequence numbers
// a subscriber received across a broker restart.
//
// Tests only: no production package may import it (internal/daemontest's
// test checks that). It must not import daemon/mqtt either: the in-package
// tests of daemon/mqtt import it, and that would be an import cycle. It
// depends on paho and the standard library only.
package mqtttest
