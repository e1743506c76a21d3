package mqtt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/facegate/facegate/daemon/auth"
)

// signedDelete returns a signed delete request for door1.
func signedDelete(t *testing.T, k auth.Key, id string) string {
	t.Helper()
	r := &EnrollRequest{RequestID: id, Op: OpDelete, SubjectID: "alice"}
	a, err := Sign(k, r, "door1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r.Auth = a
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func realAuth(t *testing.T, h *Handlers) auth.Key {
	t.Helper()
	k, err := auth.NewKey("admin", bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := auth.NewKeyRing(k)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(ring, auth.VerifierOptions{NonceCacheSize: 100000})
	if err != nil {
		t.Fatal(err)
	}
	h.Authenticate = VerifyWith(v, "door1")
	h.Admit = AdmitWith(v, "door1")
	return k
}

func replyOf(t *testing.T, f *fakeConn, id string) []EnrollReply {
	t.Helper()
	var out []EnrollReply
	for _, p := range f.published("facegate/door1/enroll/reply/" + id) {
		if p.topic != "facegate/door1/enroll/reply/"+id {
			continue
		}
		var r EnrollReply
		if err := json.Unmarshal([]byte(p.payload), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// Issue 15, item 4: 500 signed requests in a burst; every one gets exactly
// one reply, ok or busy, and each busy request is counted once.
func TestFloodEveryAdmittedRequestGetsOneReply(t *testing.T) {
	var handled atomic.Int64
	h := Handlers{Enroll: func(context.Context, *EnrollRequest) EnrollReply {
		time.Sleep(2 * time.Millisecond)
		handled.Add(1)
		return EnrollReply{}
	}}
	k := realAuth(t, &h)
	c, f := startFake(t, testConfig(t), h) // QueueSize 4
	waitFor(time.Second, func() bool { _, ok := f.deliver("facegate/door1/feedback", "{}"); return ok })
	const n = 500
	reqs := make([]string, n)
	for i := range reqs {
		reqs[i] = signedDelete(t, k, fmt.Sprintf("flood-%03d", i))
	}
	start := time.Now()
	for _, r := range reqs {
		f.deliver("facegate/door1/enroll/request", r)
	}
	t.Logf("%d requests delivered in %s", n, time.Since(start))
	var ok, busy int
	if !waitFor(20*time.Second, func() bool {
		return len(f.published("facegate/door1/enroll/reply/flood-")) >= n
	}) {
		t.Fatalf("%d of %d replies", len(f.published("facegate/door1/enroll/reply/flood-")), n)
	}
	time.Sleep(50 * time.Millisecond) // nothing more may come
	for i := 0; i < n; i++ {
		rs := replyOf(t, f, fmt.Sprintf("flood-%03d", i))
		if len(rs) != 1 {
			t.Fatalf("request %d got %d replies", i, len(rs))
		}
		switch {
		case rs[0].Status == ReplyOK:
			ok++
		case rs[0].Code == CodeBusy:
			busy++
		default:
			t.Fatalf("request %d: %s/%s %s", i, rs[0].Status, rs[0].Code, rs[0].Message)
		}
	}
	cn := c.Counters()
	if int64(ok) != handled.Load() || uint64(busy) != cn.RequestsBusy || cn.RepliesDropped != 0 || cn.RequestsDropped != 0 {
		t.Fatalf("ok %d handled %d busy %d counters %+v", ok, handled.Load(), busy, cn)
	}
	if busy == 0 {
		t.Fatalf("a queue of 4 took 500 requests without busy: the test does not load it")
	}
	t.Logf("ok %d, busy %d", ok, busy)
}

// Issue 15, item 5: forged requests are refused on arrival, before they
// take a queue slot, so signed requests sent during a flood are answered ok.
func TestForgedFloodDoesNotCrowdOutSigned(t *testing.T) {
	h := Handlers{Enroll: func(context.Context, *EnrollRequest) EnrollReply {
		time.Sleep(time.Millisecond)
		return EnrollReply{}
	}}
	k := realAuth(t, &h)
	evil, _ := auth.NewKey("admin", bytes.Repeat([]byte{9}, 32)) // right id, wrong secret
	c, f := startFake(t, testConfig(t), h)
	waitFor(time.Second, func() bool { _, ok := f.deliver("facegate/door1/feedback", "{}"); return ok })

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var forged atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			f.deliver("facegate/door1/enroll/request", signedDelete(t, evil, fmt.Sprintf("forged-%d", i)))
			f.deliver("facegate/door1/enroll/request", fmt.Sprintf(`{"request_id":"unsigned-%d","op":"delete","subject_id":"alice"}`, i))
			forged.Add(2)
		}
	}()
	time.Sleep(100 * time.Millisecond)
	for i := 0; i < 10; i++ {
		id := fmt.Sprintf("real-%d", i)
		sent := time.Now()
		f.deliver("facegate/door1/enroll/request", signedDelete(t, k, id))
		if !waitFor(2*time.Second, func() bool { return len(replyOf(t, f, id)) > 0 }) {
			t.Fatalf("%s: no reply within 2 s during the flood", id)
		}
		if r := replyOf(t, f, id)[0]; r.Status != ReplyOK {
			t.Fatalf("%s: %s/%s %s", id, r.Status, r.Code, r.Message)
		}
		t.Logf("%s answered in %s", id, time.Since(sent).Round(time.Millisecond))
	}
	stop()
	wg.Wait()
	cn := c.Counters()
	if cn.RequestsBusy != 0 {
		t.Fatalf("forged requests took queue slots: %d busy", cn.RequestsBusy)
	}
	if cn.RequestsRejected < uint64(forged.Load()) {
		t.Fatalf("rejected %d of %d forged", cn.RequestsRejected, forged.Load())
	}
	t.Logf("%d forged requests refused, %d of their replies dropped", forged.Load(), cn.RepliesDropped)
	// A refusal says only "unauthorised": which check failed is not told.
	for _, p := range f.published("facegate/door1/enroll/reply/forged-") {
		var r EnrollReply
		if err := json.Unmarshal([]byte(p.payload), &r); err != nil {
			t.Fatal(err)
		}
		if r.Code != CodeUnauthorised || r.Message != "unauthorised" {
			t.Fatalf("forged reply says %s %q", r.Code, r.Message)
		}
		if strings.Contains(p.payload, "signature") || strings.Contains(p.payload, "key") {
			t.Fatalf("reply reveals the failed check: %s", p.payload)
		}
		break
	}
}
