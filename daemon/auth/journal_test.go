package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func journalVerifier(t *testing.T, path string, c *clock) *Verifier {
	t.Helper()
	ring, _, _ := testRing(t)
	v, err := NewVerifier(ring, VerifierOptions{Now: c.now, Journal: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func signed(t *testing.T, k Key, r Request, at time.Time) Fields {
	t.Helper()
	f, err := Sign(k, r, at)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// A request accepted before a restart is a replay after it: the nonce
// journal survives the process (issue 15, item 3).
func TestJournalReplayAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "nonces")
	c := newClock(t0)
	_, k, _ := testRing(t)
	f := signed(t, k, baseReq, t0)

	v1 := journalVerifier(t, path, c)
	if err := v1.Verify(f, baseReq); err != nil {
		t.Fatalf("first use: %v", err)
	}
	v1.Close()

	c.add(6 * time.Second) // the daemon restarts within the window
	v2 := journalVerifier(t, path, c)
	if err := v2.Check(f, baseReq); !errors.Is(err, ErrReplay) {
		t.Fatalf("Check after restart = %v, want ErrReplay", err)
	}
	if err := v2.Verify(f, baseReq); !errors.Is(err, ErrReplay) {
		t.Fatalf("Verify after restart = %v, want ErrReplay", err)
	}
	// Without the journal the same replay would have been accepted.
	ring, _, _ := testRing(t)
	mem, _ := NewVerifier(ring, VerifierOptions{Now: c.now})
	if err := mem.Verify(f, baseReq); err != nil {
		t.Fatalf("in-memory verifier: %v", err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("journal mode: %v %v", st, err)
	}
}

// Check never records: a request refused busy after Check can still be
// accepted once by Verify.
func TestCheckDoesNotRecord(t *testing.T) {
	c := newClock(t0)
	v := journalVerifier(t, filepath.Join(t.TempDir(), "nonces"), c)
	_, k, _ := testRing(t)
	f := signed(t, k, baseReq, t0)
	for i := 0; i < 3; i++ {
		if err := v.Check(f, baseReq); err != nil {
			t.Fatalf("Check %d: %v", i, err)
		}
	}
	if err := v.Verify(f, baseReq); err != nil {
		t.Fatal(err)
	}
	if err := v.Check(f, baseReq); !errors.Is(err, ErrReplay) {
		t.Fatalf("Check after Verify = %v, want ErrReplay", err)
	}
	bad := f
	bad.Signature = strings.Repeat("0", 64)
	if err := v.Check(bad, baseReq); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("Check forged = %v", err)
	}
}

// Expired nonces are dropped on open, a torn last line is ignored, and the
// file is compacted.
func TestJournalOpenDropsExpiredAndTorn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nonces")
	c := newClock(t0)
	_, k, _ := testRing(t)
	v := journalVerifier(t, path, c)
	old := signed(t, k, baseReq, t0)
	if err := v.Verify(old, baseReq); err != nil {
		t.Fatal(err)
	}
	c.add(50 * time.Second)
	r2 := baseReq
	r2.RequestID = "req-0002"
	recent := signed(t, k, r2, c.now())
	if err := v.Verify(recent, r2); err != nil {
		t.Fatal(err)
	}
	v.Close()
	// A crash mid-append leaves a torn line.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("1790000099 door-1 AAAAAAAA")
	f.Close()

	c.add(20 * time.Second) // old has expired (window 60 s), recent has not
	v2 := journalVerifier(t, path, c)
	if n := v2.NonceCacheLen(); n != 1 {
		t.Fatalf("live nonces after reopen = %d, want 1", n)
	}
	if err := v2.Verify(recent, r2); !errors.Is(err, ErrReplay) {
		t.Fatalf("recent replay = %v", err)
	}
	b, _ := os.ReadFile(path)
	if lines := strings.Count(string(b), "\n"); lines != 1 || strings.Contains(string(b), "AAAAAAAA\n") {
		t.Fatalf("journal not compacted:\n%s", b)
	}
}

// A journal that cannot be written refuses the request instead of
// accepting it without replay protection.
func TestJournalFailureRefuses(t *testing.T) {
	c := newClock(t0)
	v := journalVerifier(t, filepath.Join(t.TempDir(), "nonces"), c)
	v.journal.f.Close() // the next write fails, as on a full or broken disk
	_, k, _ := testRing(t)
	f := signed(t, k, baseReq, t0)
	err := v.Verify(f, baseReq)
	if !errors.Is(err, ErrJournal) || Code(err) != CodeInternal {
		t.Fatalf("Verify = %v (code %q), want ErrJournal/internal", err, Code(err))
	}
	if v.NonceCacheLen() != 0 {
		t.Fatal("a nonce that was not recorded durably is in the cache")
	}
}

func TestJournalCompactsWhileRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nonces")
	c := newClock(t0)
	_, k, _ := testRing(t)
	v := journalVerifier(t, path, c)
	for i := 0; i < 3000; i++ {
		r := baseReq
		r.RequestID = "r" + strings.Repeat("x", i%7) + string(rune('a'+i%26))
		if err := v.Verify(signed(t, k, r, c.now()), r); err != nil {
			t.Fatal(err)
		}
		c.add(time.Second) // ~60 live at any time
	}
	b, _ := os.ReadFile(path)
	if lines := strings.Count(string(b), "\n"); lines > 2*61+1024+1 {
		t.Fatalf("journal holds %d lines for ~60 live nonces", lines)
	}
}
