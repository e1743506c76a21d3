package mqtt

import (
	"context"
	"runtime"
	"testing"

	"github.com/facegate/facegate/internal/mqtttest"
)

// Issue 15, item 8: a publish announcing 200 MB is refused from its fixed
// header, before the broker allocates or reads it; a publish within the
// limit still goes through.
func TestEmbeddedBrokerRefusesOversizedPacket(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := StartEmbedded(ctx, "127.0.0.1:0", EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	ok := mqtttest.RawConnect(t, b.Addr(), '1')
	defer ok.Close()
	payload := make([]byte, 1<<20)
	pub := append([]byte{0x30}, mqtttest.Varint(3+len(payload))...)
	pub = append(append(pub, 0, 1, 't'), payload...)
	if _, err := ok.Write(pub); err != nil {
		t.Fatalf("1 MiB publish: %v", err)
	}

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	big := mqtttest.RawConnect(t, b.Addr(), '2')
	defer big.Close()
	// The broker closes the connection instead of waiting for 200 MB.
	mqtttest.RefusesAnnounced(t, big, 200<<20, "an oversized publish")
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Fatalf("broker allocated %d MB for a refused packet", grew>>20)
	}
	// The well-behaved connection is still served.
	mqtttest.Ping(t, ok)
}
