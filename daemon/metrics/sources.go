package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sources are the values other parts of the gate already keep; they are
// read at scrape time, never counted twice. Any of them may be nil (its
// metrics are then absent). The functions are called from the scraping
// goroutine and must be safe for concurrent use and quick.
type Sources struct {
	// Gallery returns the enrolled people and their templates.
	Gallery func() (subjects, templates int)
	// Camera returns the capture counters.
	Camera func() Camera
	// MQTT returns the broker connection's state and counters.
	MQTT func() MQTT
	// Feedback returns the operators' verdicts on published events.
	Feedback func() Feedback
}

// Camera are the capture side's counters (capture.Metrics).
type Camera struct {
	FramesIn, FramesOut, Dropped, Corrupt  uint64
	Timeouts, Outages, Reconnects, Decodes uint64
	DecodeTotal                            time.Duration
	Connected                              bool
}

// MQTT is the broker connection's state and the client's counters.
type MQTT struct {
	Connected                                      bool
	OutboxPending, OutboxDropped                   uint64
	RequestsDropped, RequestsRejected, Republished uint64
}

// Feedback counts operators' verdicts on events (the feedback topic). A
// reviewed grant said to be wrong is a suspected false grant.
type Feedback struct {
	Correct, Wrong              uint64
	GrantsReviewed, FalseGrants uint64
}

// SetSources installs the callbacks; it may be called once the parts they
// read exist, after the server has started.
func (m *Metrics) SetSources(s Sources) {
	m.srcMu.Lock()
	m.src = s
	m.srcMu.Unlock()
}

// sourceCollector turns Sources and the engine's drop counters into const
// metrics at each scrape.
type sourceCollector struct{ m *Metrics }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

var (
	dDropped          = desc("frames_dropped_total", "Frames replaced by a newer one before anyone took them, by queue: camera (before the engine), analyse (before the detector), decide (analysed, before the decider).", "queue")
	dCamIn            = desc("camera_frames_in_total", "Frames the camera or file source delivered.")
	dCamOut           = desc("camera_frames_out_total", "Frames handed from the camera to the engine.")
	dCamCorrupt       = desc("camera_frames_corrupt_total", "Frames skipped as undecodable or truncated.")
	dCamTimeouts      = desc("camera_timeouts_total", "Driver waits that produced no frame.")
	dCamOutages       = desc("camera_outages_total", "Times the camera went away.")
	dCamReconnects    = desc("camera_reconnects_total", "Times the camera came back after an outage.")
	dCamConnected     = desc("camera_connected", "1 while the camera is connected.")
	dCamDecodeSeconds = desc("camera_decode_seconds_total", "Time spent decoding frames (divide by facegate_camera_decodes_total for the mean).")
	dCamDecodes       = desc("camera_decodes_total", "Frames decoded.")
	dGallerySubjects  = desc("gallery_subjects", "People enrolled in the gallery.")
	dGalleryTemplates = desc("gallery_templates", "Templates (embeddings) in the gallery.")
	dMQTTConnected    = desc("mqtt_connected", "1 while the MQTT broker connection is up.")
	dOutboxPending    = desc("outbox_pending_events", "Events in the durable outbox not yet acknowledged by the broker (outbox depth).")
	dOutboxDropped    = desc("outbox_dropped_events_total", "Undelivered events dropped because the outbox was full.")
	dReqDropped       = desc("mqtt_requests_dropped_total", "Requests or replies dropped because a queue was full.")
	dReqRejected      = desc("mqtt_requests_rejected_total", "Requests rejected as malformed before any handler saw them.")
	dRepublished      = desc("mqtt_events_republished_total", "Events published again after a reconnect (at-least-once delivery).")
	dFeedback         = desc("feedback_total", "Operators' verdicts on events, by verdict (correct, wrong).", "verdict")
	dGrantsReviewed   = desc("feedback_grants_reviewed_total", "Granted events an operator gave a verdict on.")
	dFalseGrants      = desc("feedback_false_grants_total", "Granted events an operator said were wrong: suspected false grants.")
)

func (c *sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dDropped, dCamIn, dCamOut, dCamCorrupt, dCamTimeouts, dCamOutages, dCamReconnects,
		dCamConnected, dCamDecodeSeconds, dCamDecodes, dGallerySubjects, dGalleryTemplates, dMQTTConnected, dOutboxPending,
		dOutboxDropped, dReqDropped, dReqRejected, dRepublished, dFeedback, dGrantsReviewed, dFalseGrants} {
		ch <- d
	}
}

func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.srcMu.RLock()
	s := c.m.src
	c.m.srcMu.RUnlock()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	var camDropped uint64
	if s.Camera != nil {
		cam := s.Camera()
		camDropped = cam.Dropped
		counter(dCamIn, cam.FramesIn)
		counter(dCamOut, cam.FramesOut)
		counter(dCamCorrupt, cam.Corrupt)
		counter(dCamTimeouts, cam.Timeouts)
		counter(dCamOutages, cam.Outages)
		counter(dCamReconnects, cam.Reconnects)
		gauge(dCamConnected, b2f(cam.Connected))
		ch <- prometheus.MustNewConstMetric(dCamDecodeSeconds, prometheus.CounterValue, cam.DecodeTotal.Seconds())
		counter(dCamDecodes, cam.Decodes)
	}
	counter(dDropped, camDropped, QueueCamera)
	counter(dDropped, c.m.droppedAnalyse.Load(), QueueAnalyse)
	counter(dDropped, c.m.droppedDecide.Load(), QueueDecide)
	if s.Gallery != nil {
		subjects, templates := s.Gallery()
		gauge(dGallerySubjects, float64(subjects))
		gauge(dGalleryTemplates, float64(templates))
	}
	if s.MQTT != nil {
		q := s.MQTT()
		gauge(dMQTTConnected, b2f(q.Connected))
		gauge(dOutboxPending, float64(q.OutboxPending))
		counter(dOutboxDropped, q.OutboxDropped)
		counter(dReqDropped, q.RequestsDropped)
		counter(dReqRejected, q.RequestsRejected)
		counter(dRepublished, q.Republished)
	}
	if s.Feedback != nil {
		f := s.Feedback()
		counter(dFeedback, f.Correct, "correct")
		counter(dFeedback, f.Wrong, "wrong")
		counter(dGrantsReviewed, f.GrantsReviewed)
		counter(dFalseGrants, f.FalseGrants)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
