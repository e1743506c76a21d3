package daemon

import (
	"context"
	"time"

	"github.com/facegate/facegate/daemon/metrics"
	"github.com/facegate/facegate/daemon/mqtt"
)

// The Service's Prometheus side (daemon/metrics): kept here so that
// service.go only calls it at a few points.

// startMetrics creates the gate's metrics and, unless FACEGATE_METRICS_ADDR
// is empty, serves them at once: /healthz answers and /readyz says what the
// gate waits for while the models load. An address that cannot be bound is
// logged, not fatal: the door keeps working without its metrics.
func (s *Service) startMetrics() {
	s.met = metrics.New(metrics.Options{Version: s.version, Logger: s.log.With("component", "metrics")})
	if s.cfg.MetricsAddr == "" {
		return
	}
	srv, err := metrics.NewServer(s.cfg.MetricsAddr, s.met, s.log.With("component", "metrics"))
	if err != nil {
		s.log.Error("metrics not served", "addr", s.cfg.MetricsAddr, "err", err)
		return
	}
	s.metSrv = srv
	srv.Start()
}

// MetricsAddr is the address /metrics, /healthz and /readyz are served on,
// "" when they are not.
func (s *Service) MetricsAddr() string {
	if s.metSrv == nil {
		return ""
	}
	return s.metSrv.Addr()
}

func (s *Service) stopMetrics() {
	if s.metSrv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), metrics.ShutdownTimeout)
	defer cancel()
	if err := s.metSrv.Shutdown(ctx); err != nil {
		s.log.Warn("metrics server stopped", "err", err)
	}
	s.metSrv = nil
}

// modelsLoaded records the loaded models for facegate_model_info and
// readiness.
func (s *Service) modelsLoaded(took time.Duration) {
	d := s.det.Manifest()
	ms := []metrics.Model{{Role: "detector", Name: d.Name, Version: d.Version, Weights: string(d.Weights)}}
	for _, t := range s.towers {
		e := t.Emb.Model().Manifest()
		ms = append(ms, metrics.Model{Role: "embedder", Name: e.Name, Version: e.Version, Weights: string(e.Weights)})
	}
	s.met.ModelsLoaded(took, ms...)
}

// wireMetrics hands the metrics the counters the parts already keep, read
// at scrape time, once every part exists (the end of NewService).
func (s *Service) wireMetrics() {
	s.engine.Stages = s.met
	s.met.SetSources(metrics.Sources{
		Gallery: func() (int, int) {
			n := 0
			for _, p := range s.gallery.List() {
				n += p.Templates
			}
			return s.gallery.Len(), n
		},
		Camera: func() metrics.Camera {
			c := s.capMet.Snapshot()
			return metrics.Camera{FramesIn: c.FramesIn, FramesOut: c.FramesOut, Dropped: c.Dropped, Corrupt: c.Corrupt,
				Timeouts: c.Timeouts, Outages: c.Outages, Reconnects: c.Reconnects, Decodes: c.Decodes,
				DecodeTotal: c.DecodeTotal, Connected: c.Connected}
		},
		MQTT: func() metrics.MQTT {
			c := s.client.Counters()
			return metrics.MQTT{Connected: s.client.Connected(), OutboxPending: c.OutboxPending, OutboxDropped: c.OutboxDropped,
				RequestsDropped: c.RequestsDropped, RequestsRejected: c.RequestsRejected, Republished: c.Republished}
		},
		Feedback: func() metrics.Feedback {
			st := s.acc.Snapshot(time.Now())
			return metrics.Feedback{Correct: st.Feedback.Correct, Wrong: st.Feedback.Wrong,
				GrantsReviewed: st.Rates.FAR.Samples, FalseGrants: st.Rates.FAR.Errors}
		},
	})
}

// countDecision counts a decision event with its latency from capture.
func (s *Service) countDecision(ev mqtt.Event) {
	s.met.Decision(string(ev.Decision), string(ev.Mode), time.Duration(ev.LatencyMS*float64(time.Millisecond)))
}

// countedEnroll is handleEnroll with its reply counted (requests refused
// before the handler, malformed or unauthenticated, are counted by the MQTT
// client: facegate_mqtt_requests_rejected_total).
func (s *Service) countedEnroll(ctx context.Context, r *mqtt.EnrollRequest) mqtt.EnrollReply {
	rep := s.handleEnroll(ctx, r)
	status := rep.Status
	if status == "" { // as the client completes it
		status = mqtt.ReplyOK
		if rep.Code != "" {
			status = mqtt.ReplyError
		}
	}
	s.met.Enrollment(string(r.Op), string(status), string(rep.Code))
	return rep
}
