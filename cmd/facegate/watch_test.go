package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/facegate/facegate/daemon/mqtt"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Issue 15, item 7: `facegate watch` keeps printing events after the broker
// restarts (it subscribes on every connection, not once).
func TestWatchResubscribesAfterBrokerRestart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := mqtt.StartEmbedded(ctx, "127.0.0.1:0", mqtt.EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	var out lockedBuffer
	done := make(chan error, 1)
	go func() {
		// A count well above what the test publishes: "before" is sent
		// until watch has subscribed, so it may arrive more than once,
		// and watch must still be running when "after" comes.
		done <- cmdWatch(ctx, []string{"-broker", "tcp://" + addr, "-device", "door7", "-count", "1000"}, &out)
	}()
	topic := mqtt.NewTopics("facegate", "door7").Events
	publish := func(payload string) {
		t.Helper()
		cl := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("pub-" + randomID()[:6]))
		if tok := cl.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publisher: %v", tok.Error())
		}
		defer cl.Disconnect(100)
		if tok := cl.Publish(topic, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	waitOut := func(s string) bool {
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if strings.Contains(out.String(), s) {
				return true
			}
			select {
			case err := <-done:
				t.Fatalf("watch ended early: %v\n%s", err, out.String())
			case <-time.After(50 * time.Millisecond):
			}
			if s == `"before"` {
				publish(`{"id":"before"}`) // until watch has subscribed
			}
		}
		return false
	}
	if !waitOut(`"before"`) {
		t.Fatalf("no event before the restart:\n%s", out.String())
	}
	b.Close()
	<-b.Done()
	b2, err := mqtt.StartEmbedded(ctx, addr, mqtt.EmbeddedOptions{})
	if err != nil {
		t.Fatalf("restart broker on %s: %v", addr, err)
	}
	defer b2.Close()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(out.String(), `"after"`) {
		publish(`{"id":"after"}`)
		time.Sleep(300 * time.Millisecond)
	}
	if !strings.Contains(out.String(), `"after"`) {
		t.Fatalf("watch went deaf after the broker restart:\n%s", out.String())
	}
}
