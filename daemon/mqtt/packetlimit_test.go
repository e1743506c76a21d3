package mqtt

import (
	"context"
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

func varint(n int) []byte {
	var b []byte
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

// rawConnect opens an MQTT 3.1.1 session by hand, so the test can send a
// packet header no well-behaved client library would.
func rawConnect(t *testing.T, addr string, id byte) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	connect := []byte{0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 3, 'r', 'a', id}
	if _, err := c.Write(connect); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadFull(c, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("connack %x: %v", ack, err)
	}
	return c
}

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

	ok := rawConnect(t, b.Addr(), '1')
	defer ok.Close()
	payload := make([]byte, 1<<20)
	pub := append([]byte{0x30}, varint(3+len(payload))...)
	pub = append(append(pub, 0, 1, 't'), payload...)
	if _, err := ok.Write(pub); err != nil {
		t.Fatalf("1 MiB publish: %v", err)
	}

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	big := rawConnect(t, b.Addr(), '2')
	defer big.Close()
	const size = 200 << 20
	hdr := append([]byte{0x30}, varint(size)...)
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
