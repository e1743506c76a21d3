package mqtttest_test

import (
	"bytes"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/facegate/facegate/internal/daemontest"
	"github.com/facegate/facegate/internal/mqtttest"
)

func TestVarint(t *testing.T) {
	for n, want := range map[int][]byte{0: {0}, 127: {0x7f}, 128: {0x80, 0x01}, 16383: {0xff, 0x7f}, 200 << 20: {0x80, 0x80, 0x80, 0x64}} {
		if got := mqtttest.Varint(n); !bytes.Equal(got, want) {
			t.Errorf("Varint(%d) = %x, want %x", n, got, want)
		}
	}
}

func TestTally(t *testing.T) {
	d := mqtttest.Tally([]uint64{1, 3, 2, 3, 5, 1})
	if d.Dups != 2 || !slices.Equal(d.Firsts, []uint64{1, 3, 2, 5}) || d.Seen[3] != 2 {
		t.Fatalf("tally %+v", d)
	}
	if lost := d.Lost(6); !slices.Equal(lost, []uint64{4, 6}) {
		t.Fatalf("lost %v, want [4 6]", lost)
	}
}

// TestObserverAndRawConnect: against the embedded broker, an observer
// records what is published under its wildcard; a hand-made session is
// accepted and answers PINGREQ, another announcing 200 MB is closed.
func TestObserverAndRawConnect(t *testing.T) {
	b := daemontest.Broker(t)
	obs := mqtttest.NewObserver(t, b.URL(), "obs", "a/#")
	if err := obs.WaitSubscribed(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	pub := mqtttest.NewObserver(t, b.URL(), "pub")
	for _, tp := range []string{"a/1", "b/1", "a/2/x"} {
		if err := pub.Publish(tp, "p-"+tp); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(obs.On("a/#")) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got := obs.On("a/#")
	if len(got) != 2 || got[0].Topic != "a/1" || got[0].Payload != "p-a/1" || got[0].QoS != 1 || got[1].Topic != "a/2/x" {
		t.Fatalf("observed %+v", got)
	}
	if n := len(obs.On("a/1")); n != 1 {
		t.Fatalf("On(a/1): %d messages", n)
	}
	if p := obs.Payloads("a/#"); !slices.Equal(p, []string{"p-a/1", "p-a/2/x"}) {
		t.Fatalf("Payloads(a/#) = %q", p)
	}
	c := mqtttest.RawConnect(t, b.Addr(), '1')
	defer c.Close()
	mqtttest.Ping(t, c)
	big := mqtttest.RawConnect(t, b.Addr(), '2')
	defer big.Close()
	mqtttest.RefusesAnnounced(t, big, 200<<20, "a 200 MB publish")
	mqtttest.Ping(t, c)
}

func TestCheckRestart(t *testing.T) {
	for _, c := range []struct {
		name          string
		seqs          []uint64
		pending, repl uint64
		fail          bool
	}{
		{"within QoS 1", []uint64{1, 2, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 3, 1, false},
		{"nothing waited", []uint64{1, 2, 3}, 0, 0, true},
		{"two republished", []uint64{1, 2, 3}, 1, 2, true},
		{"too many duplicates", []uint64{1, 1, 2, 2, 3}, 1, 0, true},
	} {
		ft := &fakeT{TB: t}
		mqtttest.Tally(c.seqs).CheckRestart(ft, 10, c.pending, c.repl)
		if ft.failed != c.fail {
			t.Errorf("%s: failed %v, want %v (%v)", c.name, ft.failed, c.fail, ft.msgs)
		}
	}
}

// fakeT records failures instead of failing the test.
type fakeT struct {
	testing.TB
	failed bool
	msgs   []string
}

func (f *fakeT) Helper()           {}
func (f *fakeT) Error(args ...any) { f.failed = true; f.msgs = append(f.msgs, fmt.Sprint(args...)) }
func (f *fakeT) Errorf(format string, args ...any) {
	f.failed = true
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}

func TestConnsCut(t *testing.T) {
	var cs mqtttest.Conns
	a, b := net.Pipe()
	defer b.Close()
	cs.Add(a)
	cs.Cut()
	b.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := b.Read(make([]byte, 1)); err == nil {
		t.Fatal("the far end reads after Cut")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the connection was not closed by Cut")
	}
	cs.Cut() // nothing left: no second close
}

func TestFreePort(t *testing.T) {
	p := mqtttest.FreePort(t)
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", fmt.Sprint(p)))
	if err != nil {
		t.Fatalf("port %d is not free: %v", p, err)
	}
	l.Close()
}
