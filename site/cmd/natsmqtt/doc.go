// Command natsmqtt runs a standalone nats-server (site.StartServer) with
// its MQTT listener, MaxPayload fitting the gate's enrolment requests and
// a short AckWait, until SIGINT or SIGTERM. It exists for `make
// mqtt-on-nats`, which runs daemon/mqtt's integration tests against it
// (docs/site.md, "nats-server as the embedded MQTT broker"); it is not part
// of the product.
//
// It must not depend on anything but site and daemon/mqtt (for the
// payload limit): no daemon, infer, capture or cgo.
package main
