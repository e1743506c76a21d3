// Package importer enrols people in bulk into a running gate: it reads a
// folder tree (<id>/<photos>) or a CSV (id,name,photo[,photo...]),
// validates each row (identifier, name, files present, decodable JPEG or
// PNG, at most five photos, no identifier twice), lists the gallery once,
// and sends one signed add per person, all of their photos in one request,
// so a person is either enrolled from every photo of their row or not at
// all. A bounded number of requests are in flight; a gate that answers busy
// is retried with backoff. Every row gets a line in a JSON-lines report
// (enrolled, warning, refused, skipped, unknown, with the reason) and the
// run ends with a summary.
//
// A rerun is idempotent and resumes an interrupted import: people whose
// enrolled photos (the sha256 that list returns) are the row's are
// skipped, and rows the gate refused on an earlier run with the same
// photos (read back from the previous report) are not sent again.
//
// importer talks to the gate through the small Gate interface; MQTTGate
// is the real one (signed requests over MQTT, daemon/mqtt and daemon/auth).
// It must not depend on infer/, the daemon package or TensorFlow: it runs
// on an operator's machine, builds with CGO_ENABLED=0, and judges photos
// only as files (the gate finds the faces). internal/archtest enforces it.
package importer
