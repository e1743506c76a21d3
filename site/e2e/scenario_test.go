//go:build site_e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/facegate/facegate/daemon/mqtt"
	"github.com/facegate/facegate/site"
)

// TestSite runs the checks in order on one site; each phase logs
// its figures (FIGURE lines, and -out as a Markdown table).
func TestSite(t *testing.T) {
	r := newRig(t)
	defer func() {
		if *outFlag != "" {
			os.WriteFile(*outFlag, []byte("| what | measured | how |\n|---|---|---|\n"+strings.Join(r.figures, "\n")+"\n"), 0o644)
		}
	}()
	applied := r.watchApplied()
	a, b, c := r.startGate("gate-a"), r.startGate("gate-b"), r.startGate("gate-c")
	photo, err := os.ReadFile("../../testdata/astronaut.jpg")
	if err != nil {
		t.Fatal(err)
	}
	img := []string{b64(photo)}

	// 1. Replication delay: enrolled at A, applied at B and C.
	var enrol, remove []time.Duration
	for i := range *peopleFlag {
		rep, ok := a.request(&mqtt.EnrollRequest{Op: mqtt.OpAdd, SubjectID: fmt.Sprintf("p%03d", i), Name: fmt.Sprintf("Person %d", i), Images: img}, 60*time.Second)
		if !ok || rep.Status != mqtt.ReplyOK {
			t.Fatalf("enrol p%03d at A: %+v (replied %v)", i, rep, ok)
		}
		enrol = append(enrol, r.delay(applied, r.lastSeq(), b.id, c.id)...)
	}
	for i := range *peopleFlag {
		rep, ok := a.request(&mqtt.EnrollRequest{Op: mqtt.OpDelete, SubjectID: fmt.Sprintf("p%03d", i)}, 60*time.Second)
		if !ok || rep.Status != mqtt.ReplyOK {
			t.Fatalf("remove p%03d at A: %+v (replied %v)", i, rep, ok)
		}
		remove = append(remove, r.delay(applied, r.lastSeq(), b.id, c.id)...)
	}
	r.figure("enrolment at A → applied at B and C", fmt.Sprintf("p50 %s, p95 %s, max %s over %d×2", ms(percentile(enrol, 0.5)), ms(percentile(enrol, 0.95)), ms(percentile(enrol, 1)), len(enrol)/2),
		"from the time the stream stored the change to the gate's status report")
	r.figure("removal at A → applied at B and C", fmt.Sprintf("p50 %s, p95 %s, max %s", ms(percentile(remove, 0.5)), ms(percentile(remove, 0.95)), ms(percentile(remove, 1))), "likewise")
	if p := percentile(enrol, 0.95); p > time.Second {
		t.Errorf("enrolment replication p95 %s > 1 s", p)
	}
	if p := percentile(remove, 0.95); p > time.Second {
		t.Errorf("removal replication p95 %s > 1 s", p)
	}

	// 2. The gallery stream's leader killed (-9) while enrolling at A.
	leader := r.leader()
	var wg sync.WaitGroup
	var longest time.Duration
	var failed []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 20 {
			start := time.Now()
			rep, ok := a.request(&mqtt.EnrollRequest{Op: mqtt.OpAdd, SubjectID: fmt.Sprintf("f%03d", i), Name: "Failover", Images: img}, 60*time.Second)
			if !ok || rep.Status != mqtt.ReplyOK {
				failed = append(failed, fmt.Sprintf("f%03d: %+v", i, rep))
			}
			longest = max(longest, time.Since(start))
		}
	}()
	time.Sleep(3 * time.Second)
	killedAt := time.Now()
	r.nodes[leader].kill9()
	wg.Wait()
	if len(failed) > 0 {
		t.Errorf("enrolments failed across the failover: %v", failed)
	}
	evGap := r.eventGap(killedAt, a, b, c)
	r.figure("stream leader killed -9 while enrolling at A", fmt.Sprintf("longest enrolment %s; 20 of 20 stored", longest.Round(10*time.Millisecond)), "enrolment reply time includes the election")
	r.figure("events forwarded after the leader's kill", fmt.Sprintf("first event stored %s after the kill", evGap.Round(10*time.Millisecond)), "")
	if longest > 10*time.Second+3*time.Second || evGap > 10*time.Second {
		t.Errorf("after the kill: longest enrolment %s, first event after %s; want resume within 10 s", longest, evGap)
	}
	r.nodes[leader].start()
	r.nodes[leader].waitLog("nats member serving", 30*time.Second)

	// 3. Gate C stopped while 100 are enrolled elsewhere, then restarted.
	c.stop()
	r.load("c", 100)
	r.restart(c)
	took := r.caughtUp(c)
	r.figure("gate C stopped, 100 enrolled elsewhere, restarted", "caught up "+took, "from the restart to the log line")
	// ... and killed -9 while applying a backlog.
	c.stop()
	r.load("s", *scaleFlag)
	c.proc.start()
	c.waitLog("site configured", 120*time.Second)
	time.Sleep(300 * time.Millisecond)
	c.kill9()
	r.restart(c)
	r.caughtUp(c)

	// 4. A new gate joins a site of (scale) people.
	d := &gate{}
	start := time.Now()
	d = r.startGate("gate-d")
	dt := r.caughtUp(d)
	r.figure(fmt.Sprintf("new gate joins a site of %d people", *scaleFlag+20), fmt.Sprintf("gallery built %s after `site configured`, %s after process start", dt, time.Since(start).Round(100*time.Millisecond)), "2 cores, shared")

	// 5. Refused changes: an operator signature that does not verify, a gate signature that does not.
	bad := r.loaderChange("forged-1", true)
	data, _ := site.Encode(bad, r.loader)
	seq1 := r.publishRaw(data, bad.ID)
	forged := r.loaderChange("forged-2", false)
	var env map[string]any
	data, _ = site.Encode(forged, r.loader)
	json.Unmarshal(data, &env)
	env["gate_sig"] = b64(make([]byte, 64))
	data, _ = json.Marshal(env)
	seq2 := r.publishRaw(data, forged.ID)
	for _, g := range []*gate{a, b, c, d} {
		for _, want := range []string{fmt.Sprintf("refused.%s.%d", g.id, seq1), fmt.Sprintf("refused.%s.%d", g.id, seq2)} {
			waitFor(t, 20*time.Second, want, func() bool { return contains(r.siteEvents(g.id), want) })
		}
	}
	r.figure("unsigned / wrongly signed change", "refused by all 4 gates, one site_change_refused event each", "")

	// 6. The whole cluster down: gates keep deciding, then forward.
	for _, n := range r.nodes {
		n.kill9()
	}
	down := time.Now()
	before := map[string]int{}
	for _, g := range []*gate{a, b, c, d} {
		before[g.id] = len(g.eventIDs())
	}
	time.Sleep(15 * time.Second)
	for _, g := range []*gate{a, b, c, d} {
		if n := len(g.eventIDs()) - before[g.id]; n == 0 {
			t.Errorf("%s published no event in 15 s without NATS", g.id)
		}
	}
	for _, n := range r.nodes {
		n.start()
	}
	for _, n := range r.nodes {
		n.waitLog("nats member serving", 30*time.Second)
	}
	r.figure("site cut off for 15 s", fmt.Sprintf("every gate kept publishing events (%s)", time.Since(down).Round(time.Second)), "")

	// Nothing lost, nothing doubled: every MQTT event of every gate is in the site's stream once.
	for _, g := range []*gate{a, b, c, d} {
		mq := g.eventIDs()
		var stored []string
		waitFor(t, 60*time.Second, g.id+" events forwarded", func() bool {
			stored = r.siteEvents(g.id)
			for _, e := range mq {
				if !contains(stored, e.ID) {
					return false
				}
			}
			return true
		})
		seen := map[string]int{}
		for _, id := range stored {
			seen[id]++
			if seen[id] == 2 {
				t.Errorf("%s: event %s stored twice", g.id, id)
			}
		}
		r.figure(g.id+" events", fmt.Sprintf("%d on MQTT, all in the site's stream once (%d stored incl. refusals)", len(mq), len(stored)), "")
	}

	// Galleries: identical on every gate.
	for _, g := range []*gate{a, b, c, d} {
		g.stop()
	}
	ga := a.gallery()
	if len(ga) != 20+100+*scaleFlag {
		t.Errorf("gate A holds %d people, want %d", len(ga), 20+100+*scaleFlag)
	}
	for _, g := range []*gate{b, c, d} {
		sameGallery(t, "gate A vs "+g.id, ga, g.gallery())
	}
}

func b64(b []byte) string { return base64Std(b) }

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// delay waits until every gate applied seq and returns each one's delay
// from the time the stream stored it.
func (r *siteRig) delay(a *appliedWatch, seq uint64, gates ...string) []time.Duration {
	r.t.Helper()
	stored := r.storedAt(seq)
	var out []time.Duration
	for _, g := range gates {
		var at time.Time
		waitFor(r.t, 10*time.Second, fmt.Sprintf("%s applied %d", g, seq), func() bool {
			var ok bool
			at, ok = a.reached(g, seq)
			return ok
		})
		out = append(out, at.Sub(stored))
	}
	return out
}

// leader returns the index of the node leading the gallery stream.
func (r *siteRig) leader() int {
	ctx, cancel := ctxT(10 * time.Second)
	defer cancel()
	s, err := r.js.Stream(ctx, site.GalleryStream)
	if err != nil {
		r.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil || info.Cluster == nil {
		r.t.Fatalf("stream info: %v", err)
	}
	for i, n := range r.nodes {
		if n.name == info.Cluster.Leader {
			return i
		}
	}
	r.t.Fatalf("leader %q is not a node", info.Cluster.Leader)
	return -1
}

// caughtUp waits for the gate's "site gallery caught up" line and
// returns the time it reports.
func (r *siteRig) caughtUp(g *gate) string {
	g.waitLog("site gallery caught up", 120*time.Second)
	logs := g.logs.String()
	i := strings.LastIndex(logs, "site gallery caught up")
	line := logs[i:]
	if j := strings.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	if k := strings.Index(line, "took="); k >= 0 {
		return strings.Fields(line[k+5:])[0]
	}
	return line
}

// eventGap is how long after t the first event of any gate was stored in
// the site's stream.
func (r *siteRig) eventGap(t0 time.Time, gates ...*gate) time.Duration {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := ctxT(2 * time.Second)
		s, err := r.js.Stream(ctx, site.EventsStream)
		if err == nil {
			if m, err := s.GetLastMsgForSubject(ctx, site.EventsSubjectPrefix+">"); err == nil && m.Time.After(t0) {
				cancel()
				return m.Time.Sub(t0)
			}
		}
		cancel()
		time.Sleep(50 * time.Millisecond)
	}
	return 30 * time.Second
}
