package eval

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func TestProgressSilentWhenNotATerminal(t *testing.T) {
	var buf bytes.Buffer
	p := NewProgress(&buf, "images", 3)
	p.Add(1)
	p.Add(2)
	p.Done()
	if buf.Len() != 0 {
		t.Fatalf("wrote %q to a buffer", buf.String())
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if IsTerminal(w) || IsTerminal(&buf) || IsTerminal(nil) {
		t.Error("pipe or buffer taken for a terminal")
	}
}

func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	clock := func() time.Time { return now }
	p := newProgress(&buf, "images", 4, true, clock)
	now = now.Add(2 * time.Second)
	p.Add(1) // drawn: first update
	p.Add(1) // throttled: same instant
	now = now.Add(time.Second)
	p.Add(1) // drawn
	p.Add(1) // drawn: complete
	p.Done()
	p.Done() // no second newline
	out := buf.String()
	if n := strings.Count(out, "\r"); n != 4 {
		t.Errorf("%d redraws, want 4: %q", n, out)
	}
	if !strings.Contains(out, "1/4  25% eta 6s") || !strings.Contains(out, "3/4  75% eta 1s") || !strings.Contains(out, "4/4 100% eta 0s") {
		t.Errorf("unexpected bar: %q", out)
	}
	if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
		t.Errorf("want exactly one final newline: %q", out)
	}
}
