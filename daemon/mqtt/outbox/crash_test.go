package outbox

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// TestMain runs the test binary as TestKill9's child when asked to.
func TestMain(m *testing.M) {
	if dir := os.Getenv("FACEGATE_OUTBOX_CRASH_DIR"); dir != "" {
		appendForever(dir)
	}
	os.Exit(m.Run())
}

// appendForever is the child process of TestKill9: it appends records
// forever and prints each sequence number once Append has returned (that
// is, once the record is fsync'd).
func appendForever(dir string) {
	o, err := Open(dir, Options{MaxBytes: 1 << 30, SegmentBytes: 4096})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	for {
		seq, err := o.Append(func(seq uint64) ([]byte, error) {
			return []byte(fmt.Sprintf("record %d %s", seq, make([]byte, int(seq%200)))), nil
		})
		if err != nil {
			fmt.Println("append:", err)
			os.Exit(2)
		}
		fmt.Fprintln(out, seq)
		out.Flush()
	}
}

// TestKill9 kills an appending process with SIGKILL at random moments and
// checks after each kill that the outbox opens, holds every record the
// child reported as appended, with contiguous sequence numbers and intact
// payloads, and that appending continues where it stopped. (SIGKILL keeps
// the page cache; torn writes from a power cut are TestTornTailIsTruncated.)
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 9))
	var total, base uint64 // base: sequence numbers acknowledged so far
	for round := 0; round < 5; round++ {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "FACEGATE_OUTBOX_CRASH_DIR="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		reported := make(chan uint64, 1)
		go func() {
			var last uint64
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if v, err := strconv.ParseUint(sc.Text(), 10, 64); err == nil {
					last = v
				}
			}
			reported <- last
		}()
		time.Sleep(time.Duration(50+rng.IntN(250)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		last := <-reported

		o, err := Open(dir, Options{MaxBytes: 1 << 30, SegmentBytes: 4096})
		if err != nil {
			t.Fatalf("round %d: open after kill -9: %v", round, err)
		}
		n := o.Pending()
		if base+n < last {
			t.Fatalf("round %d: records up to %d on disk, child had appended up to %d", round, base+n, last)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		for want := base + 1; want <= base+n; want++ {
			r, err := o.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			prefix := fmt.Sprintf("record %d ", want)
			if r.Seq != want || string(r.Payload[:len(prefix)]) != prefix || len(r.Payload) != len(prefix)+int(want%200) {
				t.Fatalf("round %d: record %d damaged: seq %d %q", round, want, r.Seq, r.Payload[:min(len(r.Payload), 20)])
			}
			if want < base+n {
				// Ack all but the last, so the next round also exercises
				// recovery with a partly delivered log.
				o.Ack(want)
			}
		}
		cancel()
		o.Close()
		t.Logf("round %d: killed after appending up to seq %d; records up to %d recovered", round, last, base+n)
		total += n
		base += n - 1
	}
	if total == 0 {
		t.Fatal("child never appended")
	}
}

func BenchmarkAppendFsync(b *testing.B) {
	o, err := Open(b.TempDir(), Options{MaxBytes: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	payload := make([]byte, 600) // a typical event
	for b.Loop() {
		if _, err := o.Append(func(uint64) ([]byte, error) { return payload, nil }); err != nil {
			b.Fatal(err)
		}
	}
}
