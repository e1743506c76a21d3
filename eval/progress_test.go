package eval

import (
	"bytes"
	"os"
	"strings"
	"testing"
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
	var none *Progress
	none.Add(1) // a nil bar does nothing
	none.Done()
}

func TestProgressBar(t *testing.T) {
	var buf bytes.Buffer
	p := newBar(&buf, "images", 4)
	p.Add(1)
	p.Add(3)
	p.Done()
	p.Done() // no second newline
	p.Add(1) // nothing after Done
	out := buf.String()
	if !strings.Contains(out, "images") || !strings.Contains(out, "4/4") || !strings.Contains(out, "100%") {
		t.Errorf("unexpected bar: %q", out)
	}
	if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
		t.Errorf("want exactly one final newline: %q", out)
	}
	if strings.Contains(out, "5/4") {
		t.Errorf("counted past the end: %q", out)
	}
}
