package door

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"
)

// Event is what grading reads of a published event (docs/schemas/event.json).
type Event struct {
	Time     time.Time `json:"time"`
	Decision string    `json:"decision"`
	Reason   string    `json:"reason"`
	Mode     string    `json:"mode"`
	Subject  *struct {
		ID string `json:"id"`
	} `json:"subject"`
	Score          float64     `json:"score"`
	Threshold      float64     `json:"threshold"`
	GallerySize    *int        `json:"gallery_size"`
	TargetFPIR     float64     `json:"target_fpir"`
	Margin         *float64    `json:"margin"`
	RequiredMargin *float64    `json:"required_margin"`
	Visit          *EventVisit `json:"visit"`
	Candidates     []struct {
		ID    string  `json:"id"`
		Score float64 `json:"score"`
	} `json:"candidates"`
}

// EventVisit is the event's visit.
type EventVisit struct {
	ID         uint64  `json:"id"`
	Frames     int     `json:"frames"`
	FramesSeen int     `json:"frames_seen"`
	DecisionMS float64 `json:"decision_ms"`
	End        string  `json:"end"`
	// Rejected: frames that failed the quality gate, by check.
	Rejected     map[string]int `json:"rejected"`
	LooksCarried int            `json:"looks_carried"`
}

// SubjectID is the event's subject, "" without one.
func (e Event) SubjectID() string {
	if e.Subject == nil {
		return ""
	}
	return e.Subject.ID
}

// Sample is a reading of the daemon's camera counter
// (facegate_camera_frames_in_total): Frames frames had been delivered by At.
type Sample struct {
	At     time.Time
	Frames uint64
	// Acquired is facegate_frames_acquired_total at At: analysed frames
	// whose face passed the quality gate (-1: not read).
	Acquired int64
}

// Clock maps wall-clock times to clip frame numbers from Samples taken
// while the clip played: an event's time is the capture time of one of its
// visit's frames, and a file source stamps a frame when it delivers it.
type Clock struct{ s []Sample }

// NewClock keeps the samples that show the counter moving, in time order;
// it needs two with different counts.
func NewClock(samples []Sample) (*Clock, error) {
	s := append([]Sample(nil), samples...)
	sort.Slice(s, func(i, j int) bool { return s[i].At.Before(s[j].At) })
	var out []Sample
	for _, x := range s {
		if x.Frames == 0 || (len(out) > 0 && x.Frames <= out[len(out)-1].Frames) {
			continue
		}
		out = append(out, x)
	}
	if len(out) < 2 {
		return nil, fmt.Errorf("door clock: %d usable samples of the frame counter, 2 needed", len(out))
	}
	return &Clock{s: out}, nil
}

// Frame is the (fractional) frame number being delivered at t:
// interpolated between the samples around t, extrapolated at the ends.
func (c *Clock) Frame(t time.Time) float64 {
	i := sort.Search(len(c.s), func(i int) bool { return !c.s[i].At.Before(t) })
	switch {
	case i == 0:
		i = 1
	case i == len(c.s):
		i = len(c.s) - 1
	}
	a, b := c.s[i-1], c.s[i]
	rate := float64(b.Frames-a.Frames) / b.At.Sub(a.At).Seconds()
	return float64(a.Frames) + t.Sub(a.At).Seconds()*rate
}

// Time is when frame f was delivered (the inverse of Frame).
func (c *Clock) Time(f float64) time.Time {
	i := sort.Search(len(c.s), func(i int) bool { return float64(c.s[i].Frames) >= f })
	switch {
	case i == 0:
		i = 1
	case i == len(c.s):
		i = len(c.s) - 1
	}
	a, b := c.s[i-1], c.s[i]
	per := b.At.Sub(a.At).Seconds() / float64(b.Frames-a.Frames)
	return a.At.Add(time.Duration((f - float64(a.Frames)) * per * float64(time.Second)))
}

// Acquired is how many frames passed the daemon's quality gate between
// the times of frames from and to, from the samples' Acquired counter
// (-1 when the samples do not carry it).
func Acquired(samples []Sample, clock *Clock, from, to float64) int64 {
	at := func(t time.Time) int64 {
		v := int64(-1)
		for _, s := range samples {
			if s.At.After(t) {
				break
			}
			v = s.Acquired
		}
		return v
	}
	a, b := at(clock.Time(from)), at(clock.Time(to))
	if a < 0 || b < 0 {
		return -1
	}
	return b - a
}

// Outcome is what happened to one visit.
type Outcome struct {
	Visit  Visit
	Events []Event
	// Decision is the visit's first event's decision ("" without an event);
	// Subject the identity it granted.
	Decision, Subject string
	// Acquired counts the frames of the visit that passed the quality
	// gate (-1: unknown); see Acquired.
	Acquired int64
}

// Result is the graded scenario.
type Result struct {
	Outcomes  []Outcome
	Unmatched []Event // events no visit explains
	// Genuine and stranger visits by decision ("granted" for genuine
	// visits counts grants to the right person only; "granted_other" a
	// grant to someone else; "failure_to_acquire" an unknown event with
	// that reason, no frame through the quality gate; "none" no event).
	Genuine, Stranger   map[string]int
	GenuineN, StrangerN int
	// FalseGrants: stranger visits granted to anyone plus genuine visits
	// granted to someone else.
	FalseGrants []Outcome
	// Split visits had more than one event (the daemon saw two visits).
	Split int
	// GrantMS: decision_ms of the correct grants (first good frame to the
	// event); GrantFrames their good frames.
	GrantMS     []float64
	GrantFrames []int
}

// GenuineRate is the share of genuine visits granted to their person.
func (r *Result) GenuineRate() float64 { return ratio(r.Genuine["granted"], r.GenuineN) }

func ratio(a, b int) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// Grade assigns each 1:N event to the visit whose frames its time falls in
// (within tol frames of its first or last frame; the nearest wins) and
// grades every visit by its first event.
// Samples sorted by time give each visit's Acquired count (from tol frames
// before its first frame to tol frames after its last).
func Grade(visits []Visit, events []Event, clock *Clock, samples []Sample, tol float64) *Result {
	r := &Result{Genuine: map[string]int{}, Stranger: map[string]int{}}
	outs := make([]Outcome, len(visits))
	sorted0 := append([]Sample(nil), samples...)
	sort.Slice(sorted0, func(i, j int) bool { return sorted0[i].At.Before(sorted0[j].At) })
	for i, v := range visits {
		outs[i].Visit = v
		outs[i].Acquired = Acquired(sorted0, clock, float64(v.First)-tol, float64(v.Last)+tol)
	}
	sorted := append([]Event(nil), events...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Time.Before(sorted[j].Time) })
	for _, e := range sorted {
		if e.Mode != "" && e.Mode != "1:N" {
			continue
		}
		f := clock.Frame(e.Time)
		best, bestD := -1, math.Inf(1)
		for i, v := range visits {
			d := 0.0
			switch {
			case f < float64(v.First):
				d = float64(v.First) - f
			case f > float64(v.Last):
				d = f - float64(v.Last)
			}
			if d <= tol && d < bestD {
				best, bestD = i, d
			}
		}
		if best < 0 {
			r.Unmatched = append(r.Unmatched, e)
			continue
		}
		outs[best].Events = append(outs[best].Events, e)
	}
	for i := range outs {
		o := &outs[i]
		if len(o.Events) > 1 {
			r.Split++
		}
		key := "none"
		if len(o.Events) > 0 {
			e := o.Events[0]
			o.Decision, o.Subject = e.Decision, e.SubjectID()
			key = e.Decision
			if e.Decision == "unknown" && e.Reason == ReasonFTA {
				key = ReasonFTA
			}
		}
		// Any grant to the wrong person in the visit is a false grant, even
		// after a first event.
		var wrong bool
		for _, e := range o.Events {
			if e.Decision == "granted" && (!o.Visit.Genuine || e.SubjectID() != o.Visit.Person) {
				wrong = true
			}
		}
		if o.Visit.Genuine {
			r.GenuineN++
			if key == "granted" && o.Subject != o.Visit.Person {
				key = "granted_other"
			}
			r.Genuine[key]++
			if key == "granted" {
				if v := o.Events[0].Visit; v != nil {
					r.GrantMS = append(r.GrantMS, v.DecisionMS)
					r.GrantFrames = append(r.GrantFrames, v.Frames)
				}
			}
		} else {
			r.StrangerN++
			r.Stranger[key]++
		}
		if wrong {
			r.FalseGrants = append(r.FalseGrants, *o)
		}
	}
	r.Outcomes = outs
	return r
}

// Percentile is the p-th percentile (0-100) of xs, linearly interpolated;
// NaN when empty.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	pos := p / 100 * float64(len(s)-1)
	lo := int(math.Floor(pos))
	if lo >= len(s)-1 {
		return s[len(s)-1]
	}
	return s[lo] + (pos-float64(lo))*(s[lo+1]-s[lo])
}

// Meta is what the report says about the run.
type Meta struct {
	Command     string
	When        time.Time
	FPS         float64
	Enrolled    int
	Refused     []string // "id: code" of candidates the gate refused
	ClipFrames  uint64
	Wall        time.Duration
	LoadAvg     string
	Settings    []string // FACEGATE_ settings of the run
	Threshold   string   // the 1:N rule the events stated
	Eligible    int
	DaemonFPS   string
	Notes       []string
	PhotosShown int
}

// ReasonFTA is the reason of an unknown event for a visit with no frame
// through the quality gate.
const ReasonFTA = "failure_to_acquire"

// Targets of issue 17.
const (
	TargetGenuineRate = 0.95
	TargetGrantP95MS  = 400
)

// WriteReport writes the result as Markdown.
func WriteReport(w io.Writer, r *Result, m Meta) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Door scenario (issue 17)\n\n")
	fmt.Fprintf(&b, "Run %s, %s; wall %s; load average %s.\n\n", m.When.UTC().Format("2006-01-02 15:04 UTC"), m.Command, m.Wall.Round(time.Second), m.LoadAvg)
	fmt.Fprintf(&b, "- %d enrolled one-shot (one photo each; %d candidates refused by the gate: %s), drawn from the %d LFW people of `../shared/data/faces` with 3 or more photos\n",
		m.Enrolled, len(m.Refused), list(m.Refused), m.Eligible)
	fmt.Fprintf(&b, "- %d visits: %d genuine (an enrolled person, up to %d photos other than the enrolled one) and %d never-enrolled, in random order; clip of %d frames at 640x480 played at %g fps\n",
		r.GenuineN+r.StrangerN, r.GenuineN, m.PhotosShown, r.StrangerN, m.ClipFrames, m.FPS)
	fmt.Fprintf(&b, "- settings: %s\n", strings.Join(m.Settings, " "))
	if m.Threshold != "" {
		fmt.Fprintf(&b, "- 1:N rule stated by the events: %s\n", m.Threshold)
	}
	if m.DaemonFPS != "" {
		fmt.Fprintf(&b, "- daemon: %s\n", m.DaemonFPS)
	}
	b.WriteString("\n| visits | n | granted (right person) | granted to someone else | ambiguous | unknown | failure to acquire | other | no event |\n|---|---|---|---|---|---|---|---|---|\n")
	row := func(name string, n int, c map[string]int) {
		other := n - c["granted"] - c["granted_other"] - c["ambiguous"] - c["unknown"] - c[ReasonFTA] - c["none"]
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d | %d |\n", name, n, c["granted"], c["granted_other"], c["ambiguous"], c["unknown"], c[ReasonFTA], other, c["none"])
	}
	row("genuine", r.GenuineN, r.Genuine)
	sg := map[string]int{"granted_other": r.Stranger["granted"], "ambiguous": r.Stranger["ambiguous"], "unknown": r.Stranger["unknown"], ReasonFTA: r.Stranger[ReasonFTA], "none": r.Stranger["none"]}
	row("never enrolled", r.StrangerN, sg)
	fmt.Fprintf(&b, "\n| figure | measured | target |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| false grants (a never-enrolled visit granted, or a genuine visit granted to someone else) | **%d** of %d visits | 0 |\n", len(r.FalseGrants), r.GenuineN+r.StrangerN)
	fmt.Fprintf(&b, "| genuine visits granted to their person | **%d / %d = %.1f %%** | ≥ 95 %% |\n", r.Genuine["granted"], r.GenuineN, 100*r.GenuineRate())
	fmt.Fprintf(&b, "| grant latency, first good frame to event (`visit.decision_ms`), p50 / p95 / max | %.0f / **%.0f** / %.0f ms (%d grants) | p95 ≤ 400 ms at 15 fps |\n",
		Percentile(r.GrantMS, 50), Percentile(r.GrantMS, 95), Percentile(r.GrantMS, 100), len(r.GrantMS))
	fr := make([]float64, len(r.GrantFrames))
	for i, f := range r.GrantFrames {
		fr[i] = float64(f)
	}
	fmt.Fprintf(&b, "| good frames before a grant, mean / max | %.2f / %.0f | |\n", mean(fr), Percentile(fr, 100))
	fmt.Fprintf(&b, "| visits with more than one event (the daemon split a visit) | %d | 0 |\n", r.Split)
	fmt.Fprintf(&b, "| events no visit explains | %d | 0 |\n", len(r.Unmatched))
	if len(r.FalseGrants) > 0 {
		b.WriteString("\nFalse grants:\n\n")
		for _, o := range r.FalseGrants {
			for _, e := range o.Events {
				if e.Decision == "granted" {
					fmt.Fprintf(&b, "- visit %d (%s, genuine %v): granted to %s, score %.2f, threshold %.2f\n", o.Visit.Index, o.Visit.Person, o.Visit.Genuine, e.SubjectID(), e.Score, e.Threshold)
				}
			}
		}
	}
	var missed []string
	for _, o := range r.Outcomes {
		if o.Visit.Genuine && !(o.Decision == "granted" && o.Subject == o.Visit.Person) {
			d := o.Decision
			if d == "" {
				d = "no event"
			}
			s := fmt.Sprintf("visit %d %s: %s", o.Visit.Index, o.Visit.Person, d)
			if o.Acquired >= 0 {
				s += fmt.Sprintf(" [%d frames through the quality gate]", o.Acquired)
			}
			if len(o.Events) > 0 {
				e := o.Events[0]
				s += fmt.Sprintf(" (score %.2f, threshold %.2f", e.Score, e.Threshold)
				if e.Visit != nil {
					s += fmt.Sprintf(", %d looks of %d frames", e.Visit.Frames, e.Visit.FramesSeen)
					if e.Visit.LooksCarried > 0 {
						s += fmt.Sprintf(", %d looks carried", e.Visit.LooksCarried)
					}
					if len(e.Visit.Rejected) > 0 {
						s += ", rejected: " + rejected(e.Visit.Rejected)
					}
				}
				s += ")"
				for _, x := range o.Events[1:] {
					s += fmt.Sprintf("; then %s %s %s", x.Decision, x.Reason, x.SubjectID())
				}
			}
			missed = append(missed, s)
		}
	}
	if len(missed) > 0 {
		b.WriteString("\nGenuine visits not granted:\n\n- " + strings.Join(missed, "\n- ") + "\n")
	}
	for _, e := range r.Unmatched {
		fmt.Fprintf(&b, "\nUnmatched event: %s %s %s at %s\n", e.Decision, e.Reason, e.SubjectID(), e.Time.Format(time.RFC3339Nano))
	}
	for _, n := range m.Notes {
		fmt.Fprintf(&b, "\n%s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func rejected(m map[string]int) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for i, k := range ks {
		ks[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(ks, ", ")
}

func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}
