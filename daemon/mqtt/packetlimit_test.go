package mqtt

import (
	"context"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

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
	const size = 200 << 20
	hdr := append([]byte{0x30}, mqtttest.Varint(size)...)
	hdr = append(hdr, 0, 1, 't')
	if _, err := big.Write(hdr); err != nil {
		t.Fatal(err)
	}
	// The broker closes the connection instead of waiting for 200 MB.
	big.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := big.Read(make([]byte, 1)); err == nil {
		t.Fatal("broker answered an oversized publish instead of closing the connection")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("broker kept the connection of an oversized publish open (reading it?)")
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Fatalf("broker allocated %d MB for a refused packet", grew>>20)
	}
	// The well-behaved connection is still served.
	ok.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := ok.Write([]byte{0xC0, 0}); err != nil { // PINGREQ
		t.Fatal(err)
	}
	resp := make([]byte, 2)
	if _, err := io.ReadFull(ok, resp); err != nil || resp[0] != 0xD0 {
		t.Fatalf("pingresp %x: %v", resp, err)
	}
}
