package capture

import (
	"sync/atomic"
	"time"
)

// Metrics counts what happens to frames. All methods are safe for
// concurrent use; a nil *Metrics ignores updates, so sources and stages can
// be used without one.
type Metrics struct {
	start time.Time

	framesIn    atomic.Uint64 // delivered by the source
	framesOut   atomic.Uint64 // handed to the consumer
	dropped     atomic.Uint64 // replaced by a newer frame before anyone took them
	corrupt     atomic.Uint64 // skipped: undecodable or truncated
	decodeNanos atomic.Uint64
	decodes     atomic.Uint64
	timeouts    atomic.Uint64 // driver waits that produced no frame
	outages     atomic.Uint64 // times the device went away
	reconnects  atomic.Uint64 // times it came back
	connected   atomic.Bool
}

// NewMetrics returns zeroed metrics whose fps averages start now.
func NewMetrics() *Metrics {
	m := &Metrics{start: time.Now()}
	m.connected.Store(true)
	return m
}

// FrameIn counts a frame delivered by a source.
func (m *Metrics) FrameIn() {
	if m != nil {
		m.framesIn.Add(1)
	}
}

// FrameOut counts a frame handed to the consumer.
func (m *Metrics) FrameOut() {
	if m != nil {
		m.framesOut.Add(1)
	}
}

// Dropped counts n frames nobody consumed.
func (m *Metrics) Dropped(n uint64) {
	if m != nil && n > 0 {
		m.dropped.Add(n)
	}
}

// Corrupt counts a skipped, undecodable frame.
func (m *Metrics) Corrupt() {
	if m != nil {
		m.corrupt.Add(1)
	}
}

// Decoded records the time one decode took.
func (m *Metrics) Decoded(d time.Duration) {
	if m != nil {
		m.decodeNanos.Add(uint64(d))
		m.decodes.Add(1)
	}
}

// Timeout counts a driver wait that timed out.
func (m *Metrics) Timeout() {
	if m != nil {
		m.timeouts.Add(1)
	}
}

// Outage records that the device went away.
func (m *Metrics) Outage() {
	if m != nil {
		m.outages.Add(1)
		m.connected.Store(false)
	}
}

// Reconnected records that the device came back after an outage.
func (m *Metrics) Reconnected() {
	if m != nil {
		m.reconnects.Add(1)
		m.connected.Store(true)
	}
}

// Snapshot is a consistent-enough copy of the counters at one moment.
type Snapshot struct {
	At          time.Time     `json:"at"`
	Uptime      time.Duration `json:"uptime_ns"`
	FramesIn    uint64        `json:"frames_in"`
	FramesOut   uint64        `json:"frames_out"`
	Dropped     uint64        `json:"dropped"`
	Corrupt     uint64        `json:"corrupt"`
	Decodes     uint64        `json:"decodes"`
	DecodeTotal time.Duration `json:"decode_total_ns"`
	Timeouts    uint64        `json:"timeouts"`
	Outages     uint64        `json:"outages"`
	Reconnects  uint64        `json:"reconnects"`
	Connected   bool          `json:"connected"`
	// FPSIn and FPSOut are averages since the metrics were created; use
	// Rates for a windowed figure.
	FPSIn  float64 `json:"fps_in"`
	FPSOut float64 `json:"fps_out"`
	// DecodeMean is the mean time per decode.
	DecodeMean time.Duration `json:"decode_mean_ns"`
}

// Snapshot reads all counters.
func (m *Metrics) Snapshot() Snapshot {
	now := time.Now()
	s := Snapshot{
		At:          now,
		Uptime:      now.Sub(m.start),
		FramesIn:    m.framesIn.Load(),
		FramesOut:   m.framesOut.Load(),
		Dropped:     m.dropped.Load(),
		Corrupt:     m.corrupt.Load(),
		Decodes:     m.decodes.Load(),
		DecodeTotal: time.Duration(m.decodeNanos.Load()),
		Timeouts:    m.timeouts.Load(),
		Outages:     m.outages.Load(),
		Reconnects:  m.reconnects.Load(),
		Connected:   m.connected.Load(),
	}
	if sec := s.Uptime.Seconds(); sec > 0 {
		s.FPSIn = float64(s.FramesIn) / sec
		s.FPSOut = float64(s.FramesOut) / sec
	}
	if s.Decodes > 0 {
		s.DecodeMean = s.DecodeTotal / time.Duration(s.Decodes)
	}
	return s
}

// Rates returns fps in/out and the mean decode time between an earlier
// snapshot prev and s (for the daemon's periodic publication).
func (s Snapshot) Rates(prev Snapshot) (fpsIn, fpsOut float64, decodeMean time.Duration) {
	sec := s.At.Sub(prev.At).Seconds()
	if sec > 0 {
		fpsIn = float64(s.FramesIn-prev.FramesIn) / sec
		fpsOut = float64(s.FramesOut-prev.FramesOut) / sec
	}
	if n := s.Decodes - prev.Decodes; n > 0 {
		decodeMean = (s.DecodeTotal - prev.DecodeTotal) / time.Duration(n)
	}
	return fpsIn, fpsOut, decodeMean
}
