package outbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func appendN(t *testing.T, o *Outbox, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if _, err := o.Append(func(seq uint64) ([]byte, error) {
			return []byte(fmt.Sprintf("event-%d-seq-%d", i, seq)), nil
		}); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
}

func next(t *testing.T, o *Outbox) Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r, err := o.Next(ctx)
	if err != nil {
		t.Fatalf("next: %v", err)
	}
	return r
}

func TestAppendNextAckInOrderAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	o, err := Open(dir, Options{MaxBytes: 1 << 20, SegmentBytes: 256})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, o, 0, 50)
	for i := 0; i < 20; i++ {
		r := next(t, o)
		if want := uint64(i + 1); r.Seq != want {
			t.Fatalf("seq %d, want %d", r.Seq, want)
		}
		if again := next(t, o); again.Seq != r.Seq {
			t.Fatalf("Next without Ack moved on: %d then %d", r.Seq, again.Seq)
		}
		if err := o.Ack(r.Seq); err != nil {
			t.Fatal(err)
		}
	}
	if got := o.Pending(); got != 30 {
		t.Fatalf("pending %d, want 30", got)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	o, err = Open(dir, Options{MaxBytes: 1 << 20, SegmentBytes: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if got := o.Pending(); got != 30 {
		t.Fatalf("pending after reopen %d, want 30", got)
	}
	appendN(t, o, 50, 5)
	for want := uint64(21); want <= 55; want++ {
		r := next(t, o)
		if r.Seq != want {
			t.Fatalf("after reopen seq %d, want %d", r.Seq, want)
		}
		wantPayload := fmt.Sprintf("event-%d-seq-%d", want-1, want)
		if string(r.Payload) != wantPayload {
			t.Fatalf("payload %q, want %q", r.Payload, wantPayload)
		}
		if err := o.Ack(r.Seq); err != nil {
			t.Fatal(err)
		}
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) > 1 {
		t.Fatalf("delivered segments not removed: %v", segs)
	}
}

func TestSequenceContinuesAfterEverythingDelivered(t *testing.T) {
	dir := t.TempDir()
	o, err := Open(dir, Options{MaxBytes: 4096, SegmentBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, o, 0, 10)
	if err := o.Ack(10); err != nil {
		t.Fatal(err)
	}
	o.Close()
	o, err = Open(dir, Options{MaxBytes: 4096, SegmentBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	seq, err := o.Append(func(uint64) ([]byte, error) { return []byte("x"), nil })
	if err != nil {
		t.Fatal(err)
	}
	if seq != 11 {
		t.Fatalf("seq after reopen %d, want 11 (sequence numbers must never repeat)", seq)
	}
}

func TestTornTailIsTruncated(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
		want   int
	}{
		{"partial header", func(t *testing.T, p string) { appendBytes(t, p, []byte{9, 0, 0}) }, 5},
		{"partial payload", func(t *testing.T, p string) {
			appendBytes(t, p, []byte{100, 0, 0, 0, 1, 2, 3, 4, 6, 0, 0, 0, 0, 0, 0, 0, 'a', 'b'})
		}, 5},
		{"flipped byte in last record", func(t *testing.T, p string) {
			b, _ := os.ReadFile(p)
			b[len(b)-1] ^= 0xff
			os.WriteFile(p, b, 0o600)
		}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o, err := Open(dir, Options{MaxBytes: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			appendN(t, o, 0, 5)
			o.Close()
			segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
			if len(segs) != 1 {
				t.Fatalf("segments %v", segs)
			}
			tc.damage(t, segs[0])
			o, err = Open(dir, Options{MaxBytes: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			if got := o.Pending(); got != uint64(tc.want) {
				t.Fatalf("pending %d, want %d", got, tc.want)
			}
			// Appending after recovery yields a readable log.
			appendN(t, o, 5, 1)
			o.Close()
			o, err = Open(dir, Options{MaxBytes: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			if got := o.Pending(); got != uint64(tc.want+1) {
				t.Fatalf("pending after append %d, want %d", got, tc.want+1)
			}
			var last uint64
			for i := 0; i < tc.want+1; i++ {
				r := next(t, o)
				if r.Seq <= last {
					t.Fatalf("order broken: %d after %d", r.Seq, last)
				}
				last = r.Seq
				o.Ack(r.Seq)
			}
		})
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func TestFullDropsOldestKeepsNewestAndCounts(t *testing.T) {
	dir := t.TempDir()
	o, err := Open(dir, Options{MaxBytes: 2048, SegmentBytes: 256})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, o, 0, 500) // ~35 bytes each: far more than 2 KiB
	pending, dropped := o.Pending(), o.Dropped()
	if pending+dropped != 500 {
		t.Fatalf("pending %d + dropped %d != 500", pending, dropped)
	}
	if dropped == 0 || pending == 0 {
		t.Fatalf("pending %d dropped %d: expected both > 0", pending, dropped)
	}
	var size int64
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	for _, s := range segs {
		st, _ := os.Stat(s)
		size += st.Size()
	}
	if size > 2048 {
		t.Fatalf("outbox uses %d bytes on disk, bound 2048", size)
	}
	// The newest event is kept and delivery restarts after the gap.
	first := next(t, o)
	if first.Seq != dropped+1 {
		t.Fatalf("first kept seq %d, want %d", first.Seq, dropped+1)
	}
	var last uint64
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		r, err := o.Next(ctx)
		cancel()
		if err != nil {
			break
		}
		last = r.Seq
		o.Ack(r.Seq)
	}
	if last != 500 {
		t.Fatalf("newest delivered %d, want 500", last)
	}
	o.Close()
	o, _ = Open(dir, Options{MaxBytes: 2048, SegmentBytes: 256})
	defer o.Close()
	if o.Dropped() != dropped {
		t.Fatalf("dropped count not persisted: %d, want %d", o.Dropped(), dropped)
	}
}

func TestTooLargeRecordRefused(t *testing.T) {
	o, err := Open(t.TempDir(), Options{MaxBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, err := o.Append(func(uint64) ([]byte, error) { return make([]byte, 900), nil }); err == nil {
		t.Fatal("900-byte record accepted into a 1 KiB outbox")
	}
	if o.Pending() != 0 || o.Dropped() != 0 {
		t.Fatal("refused record changed the outbox")
	}
}

func TestConcurrentAppendersOneConsumer(t *testing.T) {
	o, err := Open(t.TempDir(), Options{MaxBytes: 8 << 20, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			appendN(t, o, w*1000, 250)
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for want := uint64(1); want <= 1000; want++ {
		r, err := o.Next(ctx)
		if err != nil {
			t.Fatalf("next %d: %v", want, err)
		}
		if r.Seq != want {
			t.Fatalf("seq %d, want %d", r.Seq, want)
		}
		o.Ack(r.Seq)
	}
	wg.Wait()
}

func TestNextUnblocksOnAppendAndClose(t *testing.T) {
	o, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := o.Next(context.Background())
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	appendN(t, o, 0, 1)
	if err := <-got; err != nil {
		t.Fatalf("Next after append: %v", err)
	}
	o.Ack(1)
	go func() {
		_, err := o.Next(context.Background())
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	o.Close()
	if err := <-got; err != ErrClosed {
		t.Fatalf("Next after Close: %v, want ErrClosed", err)
	}
}
