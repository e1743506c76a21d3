package eval

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

var parseCases = []struct {
	name     string
	in       string
	want     []Pair
	errLine  int // 0: no error expected, -1: error without a line
	errMatch string
}{
	{
		name: "plain",
		in:   "a/1.jpg\ta/2.jpg\t1\na/1.jpg\tb/1.jpg\t0\n",
		want: []Pair{{A: "a/1.jpg", B: "a/2.jpg", Same: true, Line: 1}, {A: "a/1.jpg", B: "b/1.jpg", Line: 2}},
	},
	{
		name: "comments blanks CRLF spaces",
		in:   "# header\r\n\r\n  a/1.jpg \t a/2.jpg\t1 \r\n   # indented comment\nx y/1.png\tz/1.png\t0",
		want: []Pair{{A: "a/1.jpg", B: "a/2.jpg", Same: true, Line: 3}, {A: "x y/1.png", B: "z/1.png", Line: 5}},
	},
	{name: "two fields", in: "a\tb\t1\na\tb\n", errLine: 2, errMatch: "3 tab-separated fields"},
	{name: "four fields", in: "a\tb\t1\t0\n", errLine: 1, errMatch: "got 4"},
	{name: "spaces not tabs", in: "a b 1\n", errLine: 1, errMatch: "got 1"},
	{name: "bad same", in: "# c\na\tb\t2\n", errLine: 2, errMatch: `same field "2"`},
	{name: "same word", in: "a\tb\ttrue\n", errLine: 1, errMatch: "want 1 or 0"},
	{name: "empty path", in: "\tb\t1\n", errLine: 1, errMatch: "empty path"},
	{name: "absolute path", in: "/etc/passwd\tb\t1\n", errLine: 1, errMatch: "relative"},
	{name: "dotdot", in: "a\t../../b\t0\n", errLine: 1, errMatch: "relative"},
	{name: "backslash", in: `a\x` + "\tb\t0\n", errLine: 1, errMatch: "backslash"},
	{name: "control char", in: "a\x01\tb\t0\n", errLine: 1, errMatch: "control"},
	{name: "no pairs", in: "# only comments\n\n", errLine: -1, errMatch: "no pairs"},
	{name: "empty", in: "", errLine: -1, errMatch: "no pairs"},
}

func TestParsePairs(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePairs(strings.NewReader(tc.in))
			if tc.errLine == 0 {
				if err != nil {
					t.Fatalf("ParsePairs: %v", err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("got %+v, want %+v", got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, got %+v", got)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not wrap ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tc.errMatch) {
				t.Errorf("error %q does not mention %q", err, tc.errMatch)
			}
			var pe *ParseError
			if tc.errLine > 0 {
				if !errors.As(err, &pe) || pe.Line != tc.errLine {
					t.Errorf("error %v: want a ParseError on line %d", err, tc.errLine)
				}
			}
		})
	}
}

func TestParsePairsLongLine(t *testing.T) {
	in := "a\tb\t1\n" + strings.Repeat("x", maxLine+1) + "\tb\t1\n"
	_, err := ParsePairs(strings.NewReader(in))
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Line != 2 {
		t.Fatalf("want a ParseError on line 2, got %v", err)
	}
}

func TestWritePairsRoundTrip(t *testing.T) {
	pairs := parseCases[1].want
	var buf bytes.Buffer
	if err := WritePairs(&buf, pairs); err != nil {
		t.Fatal(err)
	}
	got, err := ParsePairs(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		got[i].Line, pairs[i].Line = 0, 0
	}
	if !reflect.DeepEqual(got, pairs) {
		t.Fatalf("round trip: got %+v, want %+v", got, pairs)
	}
	if want := []string{"a/1.jpg", "a/2.jpg", "x y/1.png", "z/1.png"}; !reflect.DeepEqual(Images(got), want) {
		t.Errorf("Images = %v, want %v", Images(got), want)
	}
}

// FuzzParsePairs: the parser never panics, and whatever it accepts it
// writes back into a file that parses to the same pairs.
func FuzzParsePairs(f *testing.F) {
	for _, tc := range parseCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		pairs, err := ParsePairs(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		for _, p := range pairs {
			if checkPath(p.A) != nil || checkPath(p.B) != nil || p.Line < 1 {
				t.Fatalf("accepted bad pair %+v", p)
			}
		}
		var buf bytes.Buffer
		if err := WritePairs(&buf, pairs); err != nil {
			t.Fatal(err)
		}
		again, err := ParsePairs(&buf)
		if err != nil {
			t.Fatalf("reparse of %q: %v", buf.String(), err)
		}
		if len(again) != len(pairs) {
			t.Fatalf("reparse: %d pairs, want %d", len(again), len(pairs))
		}
		for i := range again {
			a, b := again[i], pairs[i]
			if a.A != b.A || a.B != b.B || a.Same != b.Same {
				t.Fatalf("reparse pair %d: %+v, want %+v", i, a, b)
			}
		}
	})
}
