// Package door is the door scenario of issue 17: people enrolled one-shot
// from one photo each, then visits of several frames (genuine and
// never-enrolled) played to the real daemon as a paced MJPEG clip, graded
// from the events it publishes.
//
// This package plans the scenario from the face data (Plan), renders the
// clip and its timeline (WriteClip), and grades the published events
// against the timeline (Grade, Report). It is pure Go: the standard
// library and golang.org/x/image only. It must not depend on the daemon,
// infer, capture or TensorFlow; the run against a real `facegate run`
// process (embedded broker, signed enrollment, events read over MQTT) is
// the test behind the build tag door (make door-scenario), which is the
// only part that speaks MQTT.
package door
