package site

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestScale: a site of FACEGATE_SITE_PEOPLE (default 10,000) enrolled
// people on a 3-node R3 cluster. It measures the replication rate
// (enrolments/s stored and applied by two gates), the stream's storage per
// person, and how long a new gate takes to build its bbolt gallery from
// the stream (the issue asks ≤ 10 s on 2 cores).
func TestScale(t *testing.T) {
	if testing.Short() {
		t.Skip("scale test: not with -short")
	}
	people := 10000
	if v := os.Getenv("FACEGATE_SITE_PEOPLE"); v != "" {
		var err error
		if people, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	cl := startCluster(t, 3)
	f := newFixture(t, "a", "b", "c", "new")
	ctx := context.Background()
	nc, js := connect(t, cl.url(0))
	defer nc.Close()
	if err := EnsureStreams(ctx, js, StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	var gates []*gate
	for i, id := range []string{"b", "c"} {
		gnc, gjs := connect(t, cl.url(i+1))
		defer gnc.Close()
		gates = append(gates, startGate(t, f, id, gjs, NewMemApplier(), 0))
	}
	now := time.Now()
	msgs := make([][]byte, people)
	ids := make([]string, people)
	for i := range msgs {
		c := f.change(t, "a", OpEnrol, fmt.Sprintf("person-%05d", i), fmt.Sprintf("Person %d", i), i, now)
		b, err := Encode(c, f.gateKeys["a"])
		if err != nil {
			t.Fatal(err)
		}
		msgs[i], ids[i] = b, c.ID
	}
	t0 := time.Now()
	var futures []jetstream.PubAckFuture
	for i, b := range msgs {
		fu, err := js.PublishAsync(GallerySubject, b, jetstream.WithMsgID(ids[i]))
		if err != nil {
			t.Fatal(err)
		}
		futures = append(futures, fu)
		if i%1000 == 999 || i == len(msgs)-1 { // at most 1000 in flight
			select {
			case <-js.PublishAsyncComplete():
			case <-time.After(60 * time.Second):
				t.Fatal("async publishes not acknowledged in 60 s")
			}
		}
	}
	for i, fu := range futures {
		select {
		case err := <-fu.Err():
			t.Fatalf("publish %d: %v", i, err)
		default:
		}
	}
	stored := time.Since(t0)
	last := uint64(people)
	for _, g := range gates {
		waitFor(t, 60*time.Second, "gates to apply all", func() bool { return g.applied() >= last })
	}
	applied := time.Since(t0)
	s, _ := js.Stream(ctx, GalleryStream)
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d enrolments (512-d template each): stored R3 in %s (%.0f/s), applied at 2 gates in %s (%.0f/s)",
		people, stored.Round(time.Millisecond), float64(people)/stored.Seconds(), applied.Round(time.Millisecond), float64(people)/applied.Seconds())
	t.Logf("stream: %d messages, %d bytes per replica: %.0f bytes per person (message %d bytes)",
		info.State.Msgs, info.State.Bytes, float64(info.State.Bytes)/float64(info.State.Msgs), len(msgs[0]))

	// A new gate joins: builds its gallery (bbolt, fsync'd batches) from
	// the stream, every change verified.
	nnc, njs := connect(t, cl.url(2))
	defer nnc.Close()
	store, err := OpenBoltApplier(t.TempDir() + "/new.db")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	t1 := time.Now()
	g := startGate(t, f, "new", njs, store, 0)
	waitFor(t, 60*time.Second, "new gate to build its gallery", func() bool { return g.applied() >= last })
	join := time.Since(t1)
	t.Logf("new gate built a gallery of %d people from the stream in %s", people, join.Round(time.Millisecond))
	p, err := store.People()
	if err != nil || len(p) != people {
		t.Fatalf("new gate has %d people (%v), want %d", len(p), err, people)
	}
	if join > 10*time.Second {
		t.Errorf("new gate ready after %s, want ≤ 10 s", join)
	}
}
