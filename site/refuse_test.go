package site

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/facegate/facegate/daemon/auth"
)

// TestRefusedChanges: changes that are unsigned, wrongly signed, signed by
// another gate, replayed, stale or not even decodable are put on the
// stream directly (as a compromised gate could); every one is refused
// through OnRefused, recorded as seen and never applied, and the valid
// changes around them are applied.
func TestRefusedChanges(t *testing.T) {
	cl := startCluster(t, 3)
	f := newFixture(t, "a", "b")
	ctx := context.Background()
	nc, js := connect(t, cl.url(0))
	defer nc.Close()
	if err := EnsureStreams(ctx, js, StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	bnc, bjs := connect(t, cl.url(1))
	defer bnc.Close()
	a := NewMemApplier()
	g := startGate(t, f, "b", bjs, a, 0)

	raw := func(data []byte, msgID string) uint64 {
		t.Helper()
		m := nats.NewMsg(GallerySubject)
		m.Data = data
		if msgID != "" {
			m.Header.Set(jetstream.MsgIDHeader, msgID)
		}
		ack, err := js.PublishMsg(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	encode := func(c *Change, gateID string) []byte {
		b, err := Encode(c, f.gateKeys[gateID])
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	now := time.Now()
	want := map[uint64]error{}
	good := f.change(t, "a", OpEnrol, "ok1", "Ok", 1, now)
	raw(encode(good, "a"), good.ID)

	c := f.change(t, "a", OpEnrol, "u1", "Unsigned", 2, now)
	c.Request.Sig = ""
	want[raw(encode(c, "a"), c.ID)] = ErrUnsigned
	c = f.change(t, "a", OpEnrol, "w1", "Wrong", 3, now)
	first := "0"
	if c.Request.Sig[0] == '0' {
		first = "1"
	}
	c.Request.Sig = first + c.Request.Sig[1:]
	want[raw(encode(c, "a"), c.ID)] = ErrUnsigned
	// Gate a compromised: it holds its gate key and the HMAC key every gate
	// holds, not the operator's Ed25519 key. A well-formed change it signs
	// with the HMAC key is refused.
	c = f.changeSigned(t, f.hmacKey, "a", OpEnrol, "m1", "Mallory", 8, now)
	hmacSeq := raw(encode(c, "a"), c.ID)
	want[hmacSeq] = ErrUnsigned
	c = f.change(t, "a", OpEnrol, "g1", "Gate", 4, now)
	want[raw(encode(c, "b"), c.ID)] = ErrGateSignature
	c = f.change(t, "a", OpEnrol, "s1", "Stale", 5, now.Add(-10*time.Minute))
	want[raw(encode(c, "a"), c.ID)] = ErrStale
	c = f.change(t, "a", OpEnrol, "h1", "Header", 6, now)
	want[raw(encode(c, "a"), "another-id")] = ErrMsgID
	want[raw(encode(good, "a"), "replay-"+good.ID)] = ErrMsgID // a replay under a fresh msg id
	want[raw([]byte("not json"), "junk")] = ErrInvalid
	// The same change again under its own id is not even stored.
	if seq := raw(encode(good, "a"), good.ID); seq != 1 {
		t.Errorf("duplicate stored at %d, want deduplicated to 1", seq)
	}
	good2 := f.change(t, "a", OpEnrol, "ok2", "Ok", 7, now)
	last := raw(encode(good2, "a"), good2.ID)

	waitFor(t, 20*time.Second, "gate b to see every message", func() bool { return g.applied() >= last })
	if p := a.People(); len(p) != 2 || p["ok1"].Name != "Ok" || p["ok2"].Name != "Ok" {
		t.Errorf("applied %v, want only ok1 and ok2", p)
	}
	g.mu.Lock()
	refused := g.refused
	g.mu.Unlock()
	if len(refused) != len(want) {
		t.Fatalf("%d refusals reported, want %d", len(refused), len(want))
	}
	for _, r := range refused {
		if !errors.Is(r.Refused, want[r.Seq]) {
			t.Errorf("seq %d refused with %v, want %v", r.Seq, r.Refused, want[r.Seq])
		}
		if r.Seq == hmacSeq && !errors.Is(r.Refused, auth.ErrHMACRefused) {
			t.Errorf("HMAC-signed change refused with %v, want auth.ErrHMACRefused", r.Refused)
		}
	}
	if n := len(a.Refused()); n != len(want) {
		t.Errorf("applier recorded %d refused sequences, want %d", n, len(want))
	}
	// A restart does not examine (nor report) them again.
	g.stop()
	g2 := startGate(t, f, "b", bjs, a, 0)
	time.Sleep(300 * time.Millisecond)
	g2.mu.Lock()
	again := len(g2.refused)
	g2.mu.Unlock()
	if again != 0 {
		t.Errorf("%d refusals reported again after a restart", again)
	}
}

// errPastCutoff is seqCutoff's refusal.
var errPastCutoff = errors.New("past the key's last sequence")

// seqCutoff is a SeqVerifier that trusts the fixture's verifier up to the
// stream sequence last (as the daemon's retired operator keys).
type seqCutoff struct {
	Verifier
	last uint64
}

func (v seqCutoff) VerifyAt(seq uint64, c *Change) error {
	if seq > v.last {
		return errPastCutoff
	}
	return v.Verify(c)
}

// TestSeqVerifier: a Verifier that is a SeqVerifier is given each change's
// stream sequence, so it can trust a key for the history up to a sequence.
func TestSeqVerifier(t *testing.T) {
	cl := startCluster(t, 1)
	f := newFixture(t, "a")
	ctx := context.Background()
	nc, js := connect(t, cl.url(0))
	defer nc.Close()
	if err := EnsureStreams(ctx, js, StreamOptions{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	f.verify = seqCutoff{Verifier: f.verifier(), last: 2}
	a := NewMemApplier()
	g := startGate(t, f, "a", js, a, 0)
	var last uint64
	for i, s := range []string{"s1", "s2", "s3"} {
		c := f.change(t, "a", OpEnrol, s, "S", i, time.Now())
		b, err := Encode(c, f.gateKeys["a"])
		if err != nil {
			t.Fatal(err)
		}
		ack, err := js.Publish(ctx, GallerySubject, b, jetstream.WithMsgID(c.ID))
		if err != nil {
			t.Fatal(err)
		}
		last = ack.Sequence
	}
	waitFor(t, 20*time.Second, "gate a to see every change", func() bool { return g.applied() >= last })
	if p := a.People(); len(p) != 2 || p["s3"].Name != "" {
		t.Errorf("applied %v, want s1 and s2 only", p)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.refused) != 1 || g.refused[0].Seq != 3 || !errors.Is(g.refused[0].Refused, errPastCutoff) || !errors.Is(g.refused[0].Refused, ErrUnsigned) {
		t.Errorf("refused %+v, want sequence 3 past the cutoff", g.refused)
	}
}
