//go:build site_e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/facegate/facegate/daemon/auth"
	"github.com/facegate/facegate/daemon/mqtt"
	"github.com/facegate/facegate/enroll/store"
	"github.com/facegate/facegate/site"
	"github.com/nats-io/nats.go/jetstream"
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
	// Every enrolment below uses this one photo under many ids: Force
	// passes the handler's duplicate check (one person under two ids),
	// which is not what this test is about.

	// 1. Replication delay: enrolled at A, applied at B and C.
	var enrol, remove []time.Duration
	enrolStart := time.Now()
	for i := range *peopleFlag {
		rep, ok := a.request(&mqtt.EnrollRequest{Op: mqtt.OpAdd, SubjectID: fmt.Sprintf("p%03d", i), Name: fmt.Sprintf("Person %d", i), Images: img, Force: true}, 60*time.Second)
		if !ok || rep.Status != mqtt.ReplyOK {
			t.Fatalf("enrol p%03d at A: %+v (replied %v)", i, rep, ok)
		}
		enrol = append(enrol, r.delay(applied, r.lastSeq(), b.id, c.id)...)
	}
	mqttRate := float64(*peopleFlag) / time.Since(enrolStart).Seconds()
	for i := range *peopleFlag {
		rep, ok := a.request(&mqtt.EnrollRequest{Op: mqtt.OpDelete, SubjectID: fmt.Sprintf("p%03d", i)}, 60*time.Second)
		if !ok || rep.Status != mqtt.ReplyOK {
			t.Fatalf("remove p%03d at A: %+v (replied %v)", i, rep, ok)
		}
		remove = append(remove, r.delay(applied, r.lastSeq(), b.id, c.id)...)
	}
	r.figure("enrolment at A → applied at B and C", fmt.Sprintf("p50 %s, p95 %s, max %s over %d×2", ms(percentile(enrol, 0.5)), ms(percentile(enrol, 0.95)), ms(percentile(enrol, 1)), len(enrol)/2),
		"from the time the stream stored the change to the gate's status report")
	r.figure("enrolments over MQTT at A, one photo each, one after the other", fmt.Sprintf("%.1f /s", mqttRate),
		"includes detecting and embedding the photo with 2 towers, the local write and the site's R3 store")
	r.figure("removal at A → applied at B and C", fmt.Sprintf("p50 %s, p95 %s, max %s", ms(percentile(remove, 0.5)), ms(percentile(remove, 0.95)), ms(percentile(remove, 1))), "likewise")
	if p := percentile(enrol, 0.95); p > time.Second {
		t.Errorf("enrolment replication p95 %s > 1 s", p)
	}
	if p := percentile(remove, 0.95); p > time.Second {
		t.Errorf("removal replication p95 %s > 1 s", p)
	}

	// 2. The gallery stream's leader killed (-9) while enrolling at A:
	// enrolments one after the other from 2 s before the kill until 12 s
	// after it (at least 20). The events stream is led by the same node
	// (stepped down until it is), so its election is measured too.
	leader := r.leader(site.GalleryStream)
	r.leadBy(site.EventsStream, r.nodes[leader].name)
	var (
		wg       sync.WaitGroup
		longest  time.Duration
		failed   []string
		enrolled []string // failover people the site stored
		resumed  time.Duration
		killedAt time.Time
		killed   = make(chan struct{})
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-killed:
				if i >= 20 && time.Since(killedAt) > 12*time.Second {
					return
				}
			default:
			}
			start := time.Now()
			id := fmt.Sprintf("f%03d", i)
			rep, ok := a.request(&mqtt.EnrollRequest{Op: mqtt.OpAdd, SubjectID: id, Name: "Failover", Images: img, Force: true}, 60*time.Second)
			if !ok || rep.Status != mqtt.ReplyOK {
				failed = append(failed, fmt.Sprintf("%s: %+v (replied %v)", id, rep, ok))
				continue
			}
			enrolled = append(enrolled, id)
			longest = max(longest, time.Since(start))
			select {
			case <-killed:
				if resumed == 0 && start.After(killedAt) {
					resumed = time.Since(killedAt)
				}
			default:
			}
		}
	}()
	time.Sleep(2 * time.Second)
	killedAt = time.Now()
	r.nodes[leader].kill9()
	close(killed)
	evGap := r.eventGap(killedAt, a, b, c)
	wg.Wait()
	if len(failed) > 0 {
		t.Errorf("enrolments failed across the failover: %v", failed)
	}
	r.figure("gallery and events streams' leader killed -9 while enrolling at A, one enrolment after the other",
		fmt.Sprintf("%d of %d enrolments stored; longest reply %s; first enrolment sent after the kill answered %s after it",
			len(enrolled), len(enrolled)+len(failed), longest.Round(10*time.Millisecond), resumed.Round(10*time.Millisecond)),
		"reply times include the election; enrolment photo embedded at A (2 towers)")
	r.figure("events after the leader's kill", fmt.Sprintf("first event stored %s after the kill", evGap.Round(10*time.Millisecond)), "any gate, into the events stream")
	if longest > 13*time.Second || resumed > 10*time.Second || evGap > 10*time.Second {
		t.Errorf("after the kill: longest enrolment %s, enrolments resumed after %s, first event after %s; want resume within 10 s", longest, resumed, evGap)
	}
	r.nodes[leader].start()
	r.nodes[leader].waitLog("nats member serving", 30*time.Second)

	// 3. Gate C stopped while 100 are enrolled elsewhere, then restarted.
	c.stop()
	r.load("c", 100)
	restarted := time.Now()
	r.restart(c)
	took := r.caughtUp(c)
	r.figure("gate C stopped, 100 enrolled elsewhere, restarted",
		fmt.Sprintf("caught up %s after `site configured`, %s after process start", took, time.Since(restarted).Round(10*time.Millisecond)),
		"process start includes loading the models")
	// ... and killed -9 while applying a backlog of (scale) enrolments:
	// killed as soon as it reports a sequence past where it stopped and
	// short of the stream's last.
	c.stop()
	from := r.lastSeq()
	loadTook := r.load("s", *scaleFlag)
	bytes, msgs := r.streamSize()
	r.figure("enrolments stored by the site (a client publishing, 512 in flight, R3)", fmt.Sprintf("%.0f /s (%d in %s)", float64(*scaleFlag)/loadTook.Seconds(), *scaleFlag, loadTook.Round(10*time.Millisecond)),
		"signed, sealed changes with 2 templates of 128-d; what the stream takes, not the gates")
	r.figure("storage per person in the gallery stream", fmt.Sprintf("%d B per change per replica (%d changes, %.1f MB)", bytes/msgs, msgs, float64(bytes)/1e6),
		"2 templates (2 towers) of 128 floats each, sealed, base64 in JSON")
	to := r.lastSeq()
	c.proc.start()
	var at uint64
	waitFor(t, 120*time.Second, "gate C applying the backlog", func() bool {
		at = applied.latest(c.id)
		return at > from
	})
	c.kill9()
	if at >= to {
		t.Errorf("gate C had applied %d of %d when killed: not mid catch-up", at, to)
	}
	r.restart(c)
	r.caughtUp(c)
	r.figure("gate C killed -9 while applying a backlog", fmt.Sprintf("killed at sequence %d of %d (backlog from %d), restarted, caught up; gallery identical to A's at the end", at, to, from+1), "")

	// 4. A new gate joins a site of (scale) people.
	d := &gate{}
	start := time.Now()
	d = r.startGate("gate-d")
	dt := r.caughtUp(d)
	r.figure(fmt.Sprintf("new gate joins a site of %d people", len(enrolled)+100+*scaleFlag), fmt.Sprintf("gallery built %s after `site configured`, %s after process start", dt, time.Since(start).Round(100*time.Millisecond)), "2 cores, shared")

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

	// 5b. A compromised gate: gate B's every secret (its NATS password,
	// its gate seed, the site key; the site takes only Ed25519 operator
	// keys, so no gate holds an HMAC key) but not the operator's private
	// key. Its forged enrolments are well formed and gate-signed; every
	// gate refuses them. A real operator's enrolment at B still replicates.
	forgedStart := time.Now()
	forgeries := r.compromisedGate("gate-b")
	for _, g := range []*gate{a, b, c, d} {
		// Each read of a gate's events makes a consumer: poll gently.
		var got map[string]refusal
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(250 * time.Millisecond) {
			got = r.refusals(g.id)
			n := 0
			for _, f := range forgeries {
				if _, ok := got[f.ID]; ok {
					n++
				}
			}
			if n == len(forgeries) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s refused %d of the compromised gate's %d changes in 30 s", g.id, n, len(forgeries))
			}
		}
		for _, f := range forgeries {
			if e := got[f.ID]; e.Reason != "unsigned" || e.Origin != "gate-b" || !strings.Contains(e.Error, "signature") && !strings.Contains(e.Error, "unknown key") {
				t.Errorf("%s: forged change %s (%s) refused with %+v, want reason unsigned naming the operator's signature", g.id, f.ID, f.SubjectID, e)
			}
		}
	}
	refusedIn := time.Since(forgedStart)
	rep, ok := b.request(&mqtt.EnrollRequest{Op: mqtt.OpAdd, SubjectID: "real-at-b", Name: "Real", Images: img, Force: true}, 60*time.Second)
	if !ok || rep.Status != mqtt.ReplyOK {
		t.Fatalf("operator's enrolment at B: %+v (replied %v)", rep, ok)
	}
	realDelay := r.delay(applied, r.lastSeq(), a.id, c.id, d.id)
	rep, ok = b.request(&mqtt.EnrollRequest{Op: mqtt.OpDelete, SubjectID: "real-at-b"}, 60*time.Second)
	if !ok || rep.Status != mqtt.ReplyOK {
		t.Fatalf("operator's removal at B: %+v (replied %v)", rep, ok)
	}
	r.delay(applied, r.lastSeq(), a.id, c.id, d.id)
	r.figure("compromised gate (B's gate seed, NATS password and site key, no operator key) publishes 3 forged enrolments",
		fmt.Sprintf("each refused by all 4 gates with a site_change_refused event (reason unsigned), all within %s; the operator's own enrolment at B then applied at A, C and D in at most %s",
			refusedIn.Round(10*time.Millisecond), ms(slices.Max(realDelay))),
		"forged with an Ed25519 key of its own and an HMAC key under the operator's key id, and under a key id of its own")

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
	up := time.Now()
	r.figure("site cut off for 15 s (all 3 members killed -9)", fmt.Sprintf("every gate kept deciding and publishing events on MQTT (%s without NATS)", up.Sub(down).Round(time.Second)), "")

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
		cut := 0
		for _, e := range mq {
			if e.seen.After(down) && e.seen.Before(up) {
				cut++
			}
		}
		r.figure(g.id+" events", fmt.Sprintf("%d on MQTT, %d of them while cut off; every one in the site's stream exactly once (%d stored, incl. refusals and events before the test subscribed)", len(mq), cut, len(stored)), "none lost, none doubled")
	}

	// Galleries: identical on every gate.
	for _, g := range []*gate{a, b, c, d} {
		g.stop()
	}
	ga := a.gallery()
	for k := range ga {
		if strings.HasPrefix(k, "intruder") || strings.HasPrefix(k, "forged") {
			t.Errorf("gate A holds %q, a forged enrolment", strings.ReplaceAll(k, "\x00", " / "))
		}
	}
	if len(ga) != len(enrolled)+100+*scaleFlag {
		t.Errorf("gate A holds %d people, want %d", len(ga), len(enrolled)+100+*scaleFlag)
	}
	everyTower(t, "gate A", ga)
	for _, g := range []*gate{b, c, d} {
		gg := g.gallery()
		everyTower(t, g.id, gg)
		sameGallery(t, "gate A vs "+g.id, ga, gg)
	}
}

// everyTower checks that every person holds templates of every tower the
// gates run (towerModels): a change carries all of them and every gate
// applies all of them.
func everyTower(t *testing.T, name string, g map[string][]store.Template) {
	t.Helper()
	bad := 0
	for k, ts := range g {
		for _, m := range towerModels {
			if !slices.ContainsFunc(ts, func(x store.Template) bool { return x.Model == m }) {
				bad++
				if bad <= 3 {
					t.Errorf("%s: %q has no template of %s", name, strings.ReplaceAll(k, "\x00", " / "), m)
				}
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d templates missing", name, bad)
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

// leader returns the index of the node leading stream.
func (r *siteRig) leader(stream string) int {
	name := r.streamLeader(stream)
	for i, n := range r.nodes {
		if n.name == name {
			return i
		}
	}
	r.t.Fatalf("%s: leader %q is not a node", stream, name)
	return -1
}

func (r *siteRig) streamInfo(stream string) (*jetstream.StreamInfo, error) {
	ctx, cancel := ctxT(10 * time.Second)
	defer cancel()
	s, err := r.js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	return s.Info(ctx)
}

func (r *siteRig) streamLeader(stream string) string {
	// The JetStream API can be slow to answer on a loaded 2-core machine
	// (and briefly has no leader after a restart): retry for 30 s.
	var (
		info *jetstream.StreamInfo
		err  error
	)
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err = r.streamInfo(stream)
		if err == nil && info.Cluster != nil || time.Now().After(deadline) {
			break
		}
		r.t.Logf("stream info %s: %v; retrying", stream, err)
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil || info.Cluster == nil {
		r.t.Fatalf("stream info: %v", err)
	}
	return info.Cluster.Leader
}

// leadBy asks stream's leader to step down until node leads it.
func (r *siteRig) leadBy(stream, node string) {
	for range 20 {
		cur := r.streamLeader(stream)
		if cur == node {
			return
		}
		if _, err := r.nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, nil, 5*time.Second); err != nil {
			r.t.Logf("%s step down: %v", stream, err)
		}
		waitFor(r.t, 20*time.Second, stream+" leader elected", func() bool {
			l := r.streamLeader(stream)
			return l != "" && l != cur
		})
	}
	r.t.Fatalf("%s: not led by %s after 20 step-downs", stream, node)
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

// compromisedGate plays a compromised gate: with the gate's NATS
// credentials and gate seed and the site key (what an attacker who owns
// the device has), it puts three well-formed, gate-signed enrolments on
// the gallery stream, each with a forged operator signature: an Ed25519
// key of its own under the operator's key id, an HMAC key under that id,
// and an Ed25519 key under an id of its own. It returns the changes.
func (r *siteRig) compromisedGate(id string) []*site.Change {
	r.t.Helper()
	nc, err := site.Connect(site.ClientConfig{URLs: r.urls, Name: "e2e-compromised-" + id, User: id, PasswordFile: r.pw[id]})
	if err != nil {
		r.t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	seed, err := site.LoadGateKey(r.gateSeeds[id])
	if err != nil {
		r.t.Fatal(err)
	}
	ownEd, _ := auth.GenerateEd25519(r.opKey.ID)
	_, sec := secretLine(r.opKey.ID)
	ownHMAC, _ := auth.NewKey(r.opKey.ID, sec)
	rogue, _ := auth.GenerateEd25519(id + "-ops")
	var out []*site.Change
	for i, k := range []auth.Key{ownEd, ownHMAC, rogue} {
		c := r.changeBy(id, k, fmt.Sprintf("intruder-%d", i+1))
		data, err := site.Encode(c, seed)
		if err != nil {
			r.t.Fatal(err)
		}
		ctx, cancel := ctxT(20 * time.Second)
		_, err = js.Publish(ctx, site.GallerySubject, data, jetstream.WithMsgID(c.ID))
		cancel()
		if err != nil {
			r.t.Fatalf("%s publishing a forged change (its NATS permissions allow it): %v", id, err)
		}
		out = append(out, c)
	}
	return out
}
