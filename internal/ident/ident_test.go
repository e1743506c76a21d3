package ident

import (
	"strings"
	"testing"
)

func TestCheckID(t *testing.T) {
	for _, tc := range []struct {
		in, err string
	}{
		{"alice", ""},
		{"a.b-c_D9", ""},
		{strings.Repeat("x", MaxIDLen), ""},
		{"", "empty"},
		{strings.Repeat("x", MaxIDLen+1), "longer than 64"},
		{".hidden", "dot"},
		{"a:b", `":" (U+003A) at byte 1`},
		{"a/b", `"/" (U+002F)`},
		// The offending rune, not the first byte of its UTF-8 encoding (Ã).
		{"José", `"é" (U+00E9) at byte 3`},
		{"a\u202eb", "U+202E at byte 1"},
		{"a b", `" " (U+0020)`},
	} {
		err := CheckID(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("CheckID(%q) = %v, want nil", tc.in, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("CheckID(%q) = %v, want error containing %q", tc.in, err, tc.err)
		}
	}
}

func TestCheckText(t *testing.T) {
	for _, tc := range []struct {
		in, err string
	}{
		{"José Álvarez-Núñez", ""},
		{"李小龍", ""},
		{"O'Brien, Jr.", ""},
		{"Zoë 🙂", ""},
		{"مريم", ""}, // right-to-left script itself is fine
		{"evil\u202Etxt.exe", "bidirectional formatting character U+202E at byte 4"},
		{"a\u2066b", "bidirectional formatting character U+2066"},
		{"a\u200Fb", "bidirectional formatting character U+200F"},
		{"zero\u200Bwidth", "invisible format character U+200B"},
		{"bom\uFEFF", "invisible format character U+FEFF"},
		{"soft\u00ADhyphen", "invisible format character U+00AD"},
		{"tab\there", "control character U+0009"},
		{"c1\u0085", "control character U+0085"},
		{"line\u2028sep", "line or paragraph separator U+2028"},
		{"pua\uE000", "private-use"},
		{"bad\xffutf8", "invalid UTF-8 at byte 3"},
		{"rep\uFFFD", "replacement character"},
		{"non\uFFFF", "noncharacter"},
		{strings.Repeat("x", 129), "longer than 128"},
	} {
		err := CheckText(tc.in, 128)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("CheckText(%q) = %v, want nil", tc.in, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("CheckText(%q) = %v, want error containing %q", tc.in, err, tc.err)
		}
	}
}

func FuzzCheckText(f *testing.F) {
	for _, s := range []string{"José", "a\u202eb", "\xff", "ok"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if CheckText(s, 1<<10) == nil {
			for _, r := range s {
				if isBidi(r) || r < 0x20 {
					t.Fatalf("accepted %q with %U", s, r)
				}
			}
		}
	})
}
