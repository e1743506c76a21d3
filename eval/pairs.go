package eval

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"unicode"
)

// Pair is one line of a pairs file: two images, relative to the data root,
// and whether they show the same person.
type Pair struct {
	A, B string
	Same bool
	// Line is the 1-based line number in the file (0 when not parsed).
	Line int
}

// ErrMalformed is wrapped by every pairs-file syntax error.
var ErrMalformed = errors.New("malformed pairs file")

// ParseError is a pairs-file problem on one line.
type ParseError struct {
	Line int
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("pairs line %d: %s", e.Line, e.Msg) }

// Unwrap makes errors.Is(err, ErrMalformed) true.
func (e *ParseError) Unwrap() error { return ErrMalformed }

// maxLine bounds one line of a pairs file (paths are short; anything longer
// is not a pairs file).
const maxLine = 64 << 10

// ParsePairs reads a pairs file: one pair per line as
// "a<TAB>b<TAB>same", same being 1 or 0, paths relative to the data root
// (slash-separated, no "..", not absolute). Blank lines and lines whose
// first non-space character is '#' are skipped; spaces around fields and a
// trailing CR are ignored. The first malformed line is reported as a
// *ParseError with its line number. A file with no pairs is an error.
func ParsePairs(r io.Reader) ([]Pair, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxLine)
	var pairs []Pair
	line := 0
	for sc.Scan() {
		line++
		raw := sc.Text()
		if text := strings.TrimSpace(raw); text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		p, err := parsePairLine(raw)
		if err != nil {
			return nil, &ParseError{Line: line, Msg: err.Error()}
		}
		p.Line = line
		pairs = append(pairs, p)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &ParseError{Line: line + 1, Msg: fmt.Sprintf("line longer than %d bytes", maxLine)}
		}
		return nil, fmt.Errorf("read pairs: %w", err)
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("%w: no pairs", ErrMalformed)
	}
	return pairs, nil
}

func parsePairLine(text string) (Pair, error) {
	f := strings.Split(text, "\t")
	if len(f) != 3 {
		return Pair{}, fmt.Errorf("want 3 tab-separated fields (a, b, same), got %d", len(f))
	}
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	for i, name := range []string{"first image", "second image"} {
		if err := checkPath(f[i]); err != nil {
			return Pair{}, fmt.Errorf("%s %q: %v", name, f[i], err)
		}
	}
	var same bool
	switch f[2] {
	case "1":
		same = true
	case "0":
	default:
		return Pair{}, fmt.Errorf("same field %q: want 1 or 0", f[2])
	}
	return Pair{A: f[0], B: f[1], Same: same}, nil
}

// checkPath accepts a non-empty, local, slash-separated relative path
// without control characters.
func checkPath(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	for _, r := range p {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return errors.New("control or invalid character in path")
		}
	}
	if strings.Contains(p, `\`) {
		return errors.New("backslash in path (use /)")
	}
	if !filepath.IsLocal(filepath.FromSlash(p)) {
		return errors.New("path must be relative to the data root and stay inside it")
	}
	return nil
}

// WritePairs writes pairs in the format ParsePairs reads.
func WritePairs(w io.Writer, pairs []Pair) error {
	bw := bufio.NewWriter(w)
	for _, p := range pairs {
		same := "0"
		if p.Same {
			same = "1"
		}
		if _, err := fmt.Fprintf(bw, "%s\t%s\t%s\n", p.A, p.B, same); err != nil {
			return fmt.Errorf("write pairs: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write pairs: %w", err)
	}
	return nil
}

// Images returns the distinct images of pairs in first-seen order.
func Images(pairs []Pair) []string {
	seen := make(map[string]bool, 2*len(pairs))
	var out []string
	for _, p := range pairs {
		for _, im := range [2]string{p.A, p.B} {
			if !seen[im] {
				seen[im] = true
				out = append(out, im)
			}
		}
	}
	return out
}
