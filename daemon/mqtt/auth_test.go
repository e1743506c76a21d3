package mqtt

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/facegate/facegate/daemon/auth"
)

// TestSignedRequestsThroughDaemonAuth: requests signed with Sign are
// accepted by a Client whose Authenticate is VerifyWith(daemon/auth); a
// replay, a request for another door, a tampered field and an unknown key
// get replay / unauthorised.
func TestSignedRequestsThroughDaemonAuth(t *testing.T) {
	key, err := auth.NewKey("ops1", bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := auth.NewKey("ops1", bytes.Repeat([]byte{8}, 32))
	ring, err := auth.NewKeyRing(key)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(ring, auth.VerifierOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, f := startFake(t, testConfig(t), Handlers{
		Enroll:       func(context.Context, *EnrollRequest) EnrollReply { return EnrollReply{} },
		Authenticate: VerifyWith(v, "door1"),
	})
	waitFor(time.Second, func() bool { _, ok := f.deliver("facegate/door1/feedback", "{}"); return ok })
	png := b64(testPNG(t, 8, 8))
	signed := func(id, device string, k auth.Key, mutate func(r *EnrollRequest)) string {
		r := &EnrollRequest{RequestID: id, Op: OpAdd, SubjectID: "alice", Name: "Alice", Images: []string{png}}
		a, err := Sign(k, r, device, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		r.Auth = a
		if mutate != nil {
			mutate(r)
		}
		b, _ := json.Marshal(r)
		return string(b)
	}
	topic := "facegate/door1/enroll/request"
	good := signed("s-ok", "door1", key, nil)
	f.deliver(topic, good)
	if r := waitReply(t, f, "s-ok"); r.Status != ReplyOK {
		t.Fatalf("signed request: %+v", r)
	}
	f.mu.Lock()
	f.pubs = nil
	f.mu.Unlock()
	f.deliver(topic, good) // the same message again
	if r := waitReply(t, f, "s-ok"); r.Code != CodeReplay {
		t.Fatalf("replayed request: %s/%s", r.Status, r.Code)
	}
	for id, payload := range map[string]string{
		"s-door":  signed("s-door", "door2", key, nil),
		"s-tamp":  signed("s-tamp", "door1", key, func(r *EnrollRequest) { r.SubjectID = "mallory" }),
		"s-image": signed("s-image", "door1", key, func(r *EnrollRequest) { r.Images = []string{b64(testPNG(t, 9, 9))} }),
		"s-key":   signed("s-key", "door1", other, nil),
	} {
		f.deliver(topic, payload)
		if r := waitReply(t, f, id); r.Code != CodeUnauthorised {
			t.Errorf("%s: %s/%s, want unauthorised", id, r.Status, r.Code)
		}
	}
}
