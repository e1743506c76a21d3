package daemon

import (
	"math"
	"testing"
	"time"

	"github.com/facegate/facegate/pad/challenge"
)

var t0 = time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func obs(ms int, subject string, accepted bool, score float64) Observation {
	return Observation{Time: at(ms), Face: true, Subject: subject, Accepted: accepted, Score: score}
}

func newTestDecider() *Decider {
	return NewDecider(DeciderConfig{AgreeN: 2, AgreeM: 3, Cooldown: 10 * time.Second, UnknownInterval: 30 * time.Second, IdentifyOpen: true})
}

func TestGrantNeedsAgreement(t *testing.T) {
	d := newTestDecider()
	if got := d.Observe(obs(0, "ada", true, 0.30)); len(got) != 0 {
		t.Fatalf("one frame decided: %+v", got)
	}
	if got := d.Observe(Observation{Time: at(50)}); len(got) != 0 {
		t.Fatalf("a frame without a face decided: %+v", got)
	}
	got := d.Observe(obs(100, "ada", true, 0.25))
	if len(got) != 1 || got[0].Verdict != Granted || got[0].Subject != "ada" || got[0].Mode != "1:N" || got[0].Votes != 2 || got[0].Best.Score != 0.25 {
		t.Fatalf("decisions %+v", got)
	}
}

func TestDisagreementDoesNotGrant(t *testing.T) {
	d := newTestDecider()
	var all []Decision
	all = append(all, d.Observe(obs(0, "ada", true, 0.3))...)
	all = append(all, d.Observe(obs(100, "bob", true, 0.3))...)
	all = append(all, d.Observe(obs(200, "cyd", true, 0.3))...)
	if len(all) != 0 {
		t.Fatalf("three different subjects granted something: %+v", all)
	}
	// Two of the last three agree now.
	got := d.Observe(obs(300, "cyd", true, 0.3))
	if len(got) != 1 || got[0].Subject != "cyd" {
		t.Fatalf("%+v", got)
	}
}

func TestCooldownOneEventPerPerson(t *testing.T) {
	d := newTestDecider()
	grants := 0
	for ms := 0; ms < 9000; ms += 100 { // 90 frames of ada at the door
		for _, dec := range d.Observe(obs(ms, "ada", true, 0.3)) {
			if dec.Verdict == Granted {
				grants++
			}
		}
	}
	if grants != 1 {
		t.Fatalf("%d grants in 9 s, want 1 (cooldown 10 s)", grants)
	}
	got := append(d.Observe(obs(12000, "ada", true, 0.3)), d.Observe(obs(12100, "ada", true, 0.3))...)
	if len(got) != 1 {
		t.Fatalf("after the cooldown: %+v", got)
	}
	// Another person is not held back by ada's cooldown.
	got = append(d.Observe(obs(12200, "bob", true, 0.3)), d.Observe(obs(12300, "bob", true, 0.3))...)
	if len(got) != 1 || got[0].Subject != "bob" {
		t.Fatalf("bob: %+v", got)
	}
}

func TestUnknownRateLimited(t *testing.T) {
	d := newTestDecider()
	unknowns := 0
	for ms := 0; ms < 60000; ms += 100 {
		for _, dec := range d.Observe(obs(ms, "ada", false, 0.9)) {
			if dec.Verdict != Unknown || dec.Reason != "no_match" {
				t.Fatalf("%+v", dec)
			}
			unknowns++
		}
	}
	if unknowns != 2 {
		t.Fatalf("%d unknown events in 60 s, want 2 (one per 30 s)", unknowns)
	}
}

func TestClaimGrantedDeniedAndTimeout(t *testing.T) {
	d := newTestDecider()
	d.Claim(Claim{ID: "c1", Subject: "ada", Deadline: at(5000)}, at(0))
	// bob would be granted in 1:N, but the claim is for ada only.
	d.Observe(obs(100, "ada", false, 0.8))
	got := d.Observe(obs(200, "ada", false, 0.7))
	if len(got) != 1 || got[0].Verdict != Denied || got[0].Reason != "claim_mismatch" || got[0].ClaimID != "c1" || got[0].Mode != "1:1" {
		t.Fatalf("mismatch: %+v", got)
	}
	if _, ok := d.PendingClaim(); ok {
		t.Fatal("claim still pending after its decision")
	}

	d.Claim(Claim{ID: "c2", Subject: "ada", Deadline: at(9000)}, at(6000))
	d.Observe(obs(6100, "ada", true, 0.3))
	got = d.Observe(obs(6200, "ada", true, 0.2))
	if len(got) != 1 || got[0].Verdict != Granted || got[0].ClaimID != "c2" || got[0].Best.Score != 0.2 {
		t.Fatalf("grant: %+v", got)
	}

	d.Claim(Claim{ID: "c3", Subject: "ada", Deadline: at(20000)}, at(10000))
	if got := d.Tick(at(19999)); len(got) != 0 {
		t.Fatalf("expired early: %+v", got)
	}
	got = d.Tick(at(20000))
	if len(got) != 1 || got[0].Verdict != Denied || got[0].Reason != "timeout_no_face" {
		t.Fatalf("timeout: %+v", got)
	}

	d.Claim(Claim{ID: "c4", Subject: "ada", Deadline: at(30000)}, at(21000))
	got = d.Claim(Claim{ID: "c5", Subject: "bob", Deadline: at(31000)}, at(21500))
	if len(got) != 1 || got[0].ClaimID != "c4" || got[0].Reason != "superseded" {
		t.Fatalf("superseded: %+v", got)
	}
}

func TestOneToOneModeIgnoresFacesWithoutClaim(t *testing.T) {
	d := NewDecider(DeciderConfig{AgreeN: 1, AgreeM: 1, IdentifyOpen: false})
	if got := d.Observe(obs(0, "ada", true, 0.3)); len(got) != 0 {
		t.Fatalf("1:1 mode decided without a claim: %+v", got)
	}
	d.Claim(Claim{ID: "c", Subject: "ada", Deadline: at(1000)}, at(0))
	if got := d.Observe(obs(10, "ada", true, 0.3)); len(got) != 1 || got[0].Verdict != Granted {
		t.Fatalf("%+v", got)
	}
}

// claimObs is a frame of a 1:1 claim for ada: verified (accepted) or not,
// with p_real pad and the face's keypoints turned by dx (good frames are
// frontal, dx = 0).
func claimObs(ms int, accepted bool, pad, dx float64) Observation {
	o := obs(ms, "ada", accepted, 0.3)
	o.PAD = pad
	o.Seen, o.Box = true, [4]float64{100, 100, 220, 220}
	o.Keypoints, o.HasKeypoints = facePoints(dx), true
	if dx != 0 { // a turned face fails the quality gate: it does not vote
		o.Face, o.Accepted, o.PAD = false, false, math.NaN()
	}
	return o
}

func claimDecider(p *PADPolicy) *Decider {
	return NewDecider(DeciderConfig{AgreeN: 2, AgreeM: 3, Cooldown: 10 * time.Second, UnknownInterval: 30 * time.Second, PAD: p})
}

func observeAll(d *Decider, os ...Observation) []Decision {
	var out []Decision
	for _, o := range os {
		out = append(out, d.Observe(o)...)
	}
	return out
}

func TestClaimPassivePAD(t *testing.T) {
	// A photo of ada: the claim verifies on frame 2, p_real stays low; the
	// third scored frame (MinFrames 3) decides the attack.
	d := claimDecider(passivePolicy())
	d.Claim(Claim{ID: "c1", Subject: "ada", Deadline: at(5000)}, at(0))
	if !d.WantsPAD() {
		t.Fatal("a pending claim with passive PAD does not ask for scores")
	}
	if got := observeAll(d, claimObs(0, true, 0.2, 0), claimObs(66, true, 0.3, 0)); len(got) != 0 {
		t.Fatalf("decided before PAD had its frames: %+v", got)
	}
	got := d.Observe(claimObs(132, true, 0.25, 0))
	if len(got) != 1 || got[0].Verdict != PresentationAttack || got[0].Reason != "pad_passive" || got[0].Mode != "1:1" ||
		got[0].Subject != "ada" || got[0].ClaimID != "c1" || got[0].PAD == nil || !got[0].PAD.Attack || got[0].PAD.Passed ||
		got[0].PAD.Frames != 3 || got[0].PAD.Score != 0.25 || got[0].PAD.Threshold != 0.735 {
		t.Fatalf("photo: %+v", got)
	}
	if e := PADEvent(got[0].PAD); e.Decision != "attack" || *e.Score != 0.25 {
		t.Fatalf("event field %+v", e)
	}
	if d.WantsPAD() {
		t.Fatal("no claim pending, still asks for PAD scores")
	}

	// A live face: granted on the frame that verifies.
	d.Claim(Claim{ID: "c2", Subject: "ada", Deadline: at(15000)}, at(10000))
	got = observeAll(d, claimObs(10000, true, 0.9, 0), claimObs(10066, true, 0.97, 0))
	if len(got) != 1 || got[0].Verdict != Granted || got[0].PAD == nil || !got[0].PAD.Passed || got[0].PAD.Frames != 2 || got[0].PAD.Score != 0.935 {
		t.Fatalf("live: %+v", got)
	}

	// One bad frame is outvoted by the median.
	d = claimDecider(passivePolicy())
	d.Claim(Claim{ID: "c3", Subject: "ada", Deadline: at(5000)}, at(0))
	got = observeAll(d, claimObs(0, true, 0.1, 0), claimObs(66, true, 0.9, 0), claimObs(132, true, 0.95, 0))
	if len(got) != 1 || got[0].Verdict != Granted || got[0].PAD.Frames != 3 {
		t.Fatalf("median: %+v", got)
	}

	// The deadline comes before PAD's frames: still a presentation
	// attack, not a plain time-out (the identity was presented).
	d = claimDecider(passivePolicy())
	d.Claim(Claim{ID: "c4", Subject: "ada", Deadline: at(1000)}, at(0))
	observeAll(d, claimObs(0, true, 0.2, 0), claimObs(66, true, 0.2, 0))
	got = d.Tick(at(1000))
	if len(got) != 1 || got[0].Verdict != PresentationAttack || got[0].Reason != "pad_passive" || got[0].PAD.Frames != 2 {
		t.Fatalf("deadline: %+v", got)
	}

	// A claim that does not verify is denied as before; PAD was not
	// checked.
	d = claimDecider(passivePolicy())
	d.Claim(Claim{ID: "c5", Subject: "ada", Deadline: at(1000)}, at(0))
	got = observeAll(d, claimObs(0, false, 0.9, 0), claimObs(66, false, 0.9, 0))
	if len(got) != 1 || got[0].Verdict != Denied || got[0].Reason != "claim_mismatch" || got[0].PAD == nil ||
		got[0].PAD.Attack || got[0].PAD.Passed || PADEvent(got[0].PAD).Decision != "not_checked" {
		t.Fatalf("mismatch: %+v", got)
	}
}

func TestClaimWithoutPADGrantsOnIdentity(t *testing.T) {
	d := claimDecider(nil)
	d.Claim(Claim{ID: "c", Subject: "ada", Deadline: at(1000)}, at(0))
	if d.WantsPAD() {
		t.Fatal("PAD off asks for scores")
	}
	got := observeAll(d, claimObs(0, true, 0.01, 0), claimObs(66, true, 0.01, 0))
	if len(got) != 1 || got[0].Verdict != Granted || got[0].PAD != nil {
		t.Fatalf("%+v", got)
	}
}

func TestClaimChallenge(t *testing.T) {
	// Answered: the head turns the asked way after 300 ms.
	p, issued := challengePolicy(t, PADChallenge)
	d := claimDecider(p)
	d.Claim(Claim{ID: "c1", Subject: "ada", Deadline: at(2000)}, at(0))
	if d.WantsPAD() {
		t.Fatal("challenge alone asks for passive scores")
	}
	if got := observeAll(d, claimObs(0, true, math.NaN(), 0), claimObs(66, true, math.NaN(), 0)); len(got) != 0 || len(*issued) != 1 {
		t.Fatalf("no challenge when the claim verified: %+v %v", got, *issued)
	}
	ch := (*issued)[0]
	if c, _ := d.PendingClaim(); c.Deadline.Before(ch.Deadline) {
		t.Fatalf("the claim's deadline %v does not wait for the challenge's %v", c.Deadline, ch.Deadline)
	}
	dx := turnedBy(t, 25*kindDir(ch.Kind))
	var got []Decision
	for ms := 132; ms < 400; ms += 66 {
		got = append(got, d.Observe(claimObs(ms, true, math.NaN(), 0))...)
	}
	for ms := 400; ms < 900 && len(got) == 0; ms += 66 {
		got = append(got, d.Observe(claimObs(ms, false, math.NaN(), dx))...)
	}
	if len(got) != 1 || got[0].Verdict != Granted || got[0].ClaimID != "c1" || got[0].PAD == nil || !got[0].PAD.Passed ||
		got[0].PAD.Challenge == nil || got[0].PAD.Challenge.ID != ch.ID || got[0].PAD.Result.Status != challenge.Passed {
		t.Fatalf("answered: %+v", got)
	}

	// The wrong way: a presentation attack.
	d.Claim(Claim{ID: "c2", Subject: "ada", Deadline: at(12000)}, at(10000))
	observeAll(d, claimObs(10000, true, math.NaN(), 0), claimObs(10066, true, math.NaN(), 0))
	dx = turnedBy(t, -25*kindDir((*issued)[1].Kind))
	got = nil
	for ms := 10400; ms < 11200 && len(got) == 0; ms += 66 {
		got = append(got, d.Observe(claimObs(ms, false, math.NaN(), dx))...)
	}
	if len(got) != 1 || got[0].Verdict != PresentationAttack || got[0].Reason != "challenge_wrong_direction" || !got[0].PAD.Attack {
		t.Fatalf("wrong way: %+v", got)
	}

	// A still photo: frontal until the challenge's deadline, decided by
	// the ticks (the claim's own 2 s deadline waits for it).
	d.Claim(Claim{ID: "c3", Subject: "ada", Deadline: at(22000)}, at(20000))
	got = nil
	for ms := 20000; ms < 26000 && len(got) == 0; ms += 66 {
		got = append(got, d.Observe(claimObs(ms, true, math.NaN(), 0))...)
		if ms%198 == 0 {
			got = append(got, d.Tick(at(ms+10))...)
		}
	}
	if len(got) != 1 || got[0].Verdict != PresentationAttack || got[0].Reason != "challenge_timeout" {
		t.Fatalf("still photo: %+v", got)
	}
	if el := got[0].Time.Sub(at(20066)); el < 5*time.Second || el > 5300*time.Millisecond {
		t.Fatalf("decided %v after the challenge, want at its deadline (5 s)", el)
	}
}

func TestClaimBothMaskTurns(t *testing.T) {
	// A mask answers the challenge but p_real stays low.
	p, issued := challengePolicy(t, PADBoth)
	d := claimDecider(p)
	d.Claim(Claim{ID: "c", Subject: "ada", Deadline: at(5000)}, at(0))
	observeAll(d, claimObs(0, true, 0.1, 0), claimObs(66, true, 0.1, 0))
	dx := turnedBy(t, 25*kindDir((*issued)[0].Kind))
	var got []Decision
	for ms := 132; ms < 400; ms += 66 {
		got = append(got, d.Observe(claimObs(ms, true, 0.1, 0))...)
	}
	for ms := 400; ms < 1000 && len(got) == 0; ms += 66 {
		got = append(got, d.Observe(claimObs(ms, false, math.NaN(), dx))...)
	}
	if len(got) != 1 || got[0].Verdict != PresentationAttack || got[0].Reason != "pad_passive" || got[0].PAD.Result.Status != challenge.Passed {
		t.Fatalf("%+v", got)
	}
}
