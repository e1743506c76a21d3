package daemon

import (
	"testing"
	"time"
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
