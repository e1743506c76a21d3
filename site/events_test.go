package site

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func eventsIn(t *testing.T, js jetstream.JetStream, gate string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, EventsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{EventsSubjectPrefix + gate}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	n := int(info.NumPending)
	if n == 0 {
		return out
	}
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		out[m.Headers().Get(jetstream.MsgIDHeader)]++
	}
	return out
}

// TestForwarder: events are stored once per id, also when enqueued twice;
// while the server is down they wait in the outbox and are forwarded when
// it is back; an event stored just before the gate stopped (its outbox ack
// lost) is not stored again after a restart, even outside the stream's
// deduplication window.
func TestForwarder(t *testing.T) {
	cl := startCluster(t, 1)
	ctx := context.Background()
	nc, js := connect(t, cl.url(0))
	defer nc.Close()
	if err := EnsureStreams(ctx, js, StreamOptions{Replicas: 1, Duplicates: time.Second}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gnc, gjs := connect(t, cl.url(0))
	defer gnc.Close()
	fw, err := OpenForwarder(ForwarderConfig{Gate: "a", JS: gjs, Dir: dir, NoSync: true, Attempt: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- fw.Run(rctx) }()
	enqueue := func(from, to int) {
		for i := from; i < to; i++ {
			if err := fw.Enqueue(Event{ID: fmt.Sprintf("ev-%03d", i), Payload: []byte(`{"decision":"granted"}`)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	enqueue(0, 50)
	enqueue(10, 11) // the same event id again
	waitFor(t, 5*time.Second, "outbox to drain", func() bool { return fw.Pending() == 0 })

	cl.stop(0)
	enqueue(50, 80) // the gate goes on deciding
	time.Sleep(300 * time.Millisecond)
	if p := fw.Pending(); p != 30 {
		t.Errorf("%d events pending while NATS is down, want 30", p)
	}
	cl.start(0)
	waitFor(t, 15*time.Second, "buffered events to be forwarded", func() bool { return fw.Pending() == 0 })
	cancel()
	<-done
	fw.Close()

	// The gate stored ev-080 and stopped before recording it: its outbox
	// still holds it when it starts again, after the dedup window.
	fw, err = OpenForwarder(ForwarderConfig{Gate: "a", JS: gjs, Dir: dir, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fw.Close()
	enqueue(80, 82)
	m := nats.NewMsg(EventsSubjectPrefix + "a")
	m.Header.Set(jetstream.MsgIDHeader, "ev-080")
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond) // past the deduplication window
	rctx, cancel = context.WithCancel(ctx)
	defer cancel()
	go func() { done <- fw.Run(rctx) }()
	waitFor(t, 5*time.Second, "outbox to drain after restart", func() bool { return fw.Pending() == 0 })

	got := eventsIn(t, js, "a")
	if len(got) != 82 {
		t.Errorf("%d distinct events stored, want 82", len(got))
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("event %s stored %d times", id, n)
		}
	}
}
