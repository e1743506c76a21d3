package eval

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// WriteScores writes the scores file format: a header naming the score
// kind, one line per pair (a, b, same, acquired, score) and one "#fta"
// line per image in which no face was found. models/train_head.py and
// `facegate eval -scores-in` read it; peers under bench/ write it.
func WriteScores(w io.Writer, pairs []Pair, s Scores, failed []string) error {
	if len(pairs) != len(s.Results) {
		return fmt.Errorf("scores file: %d pairs but %d results", len(pairs), len(s.Results))
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# a\tb\tsame\tacquired\t%s\n", s.Kind)
	for i, p := range pairs {
		r := s.Results[i]
		fmt.Fprintf(bw, "%s\t%s\t%d\t%d\t%.6f\n", p.A, p.B, b2i(r.Same), b2i(r.Acquired), r.Score)
	}
	for _, im := range failed {
		fmt.Fprintf(bw, "#fta\t%s\n", im)
	}
	return bw.Flush()
}

// ReadScores reads what WriteScores writes.
func ReadScores(r io.Reader) ([]Pair, Scores, []string, error) {
	var pairs []Pair
	var s Scores
	var failed []string
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		f := strings.Split(line, "\t")
		switch {
		case n == 1:
			if len(f) != 5 || f[0] != "# a" {
				return nil, s, nil, errors.New("scores line 1: want the header \"# a<TAB>b<TAB>same<TAB>acquired<TAB>KIND\"")
			}
			hi, err := HigherIsMatch(f[4])
			if err != nil {
				return nil, s, nil, fmt.Errorf("scores line 1: %w", err)
			}
			s.Kind, s.HigherIsMatch = f[4], hi
		case len(f) == 2 && f[0] == "#fta":
			failed = append(failed, f[1])
		case strings.HasPrefix(line, "#") || line == "":
		case len(f) != 5:
			return nil, s, nil, fmt.Errorf("scores line %d: want 5 tab-separated fields, got %d", n, len(f))
		default:
			var r Result
			var same, acq int
			if _, err := fmt.Sscanf(f[2]+" "+f[3]+" "+f[4], "%d %d %g", &same, &acq, &r.Score); err != nil || same > 1 || acq > 1 || same < 0 || acq < 0 {
				return nil, s, nil, fmt.Errorf("scores line %d: bad same/acquired/score %q", n, f[2:])
			}
			r.Same, r.Acquired = same == 1, acq == 1
			pairs = append(pairs, Pair{A: f[0], B: f[1], Same: r.Same, Line: n})
			s.Results = append(s.Results, r)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, s, nil, err
	}
	if s.Kind == "" {
		return nil, s, nil, errors.New("scores: empty file")
	}
	return pairs, s, failed, nil
}

// ScoresFileConfig evaluates a scores file (as WriteScores writes, e.g.
// from a peer system under bench/) instead of running the models.
type ScoresFileConfig struct {
	Path    string
	Label   string // the system's name in the report
	Dataset string // default: the file's name
	Folds   int
}

// Run reads the scores file and evaluates it.
func (c ScoresFileConfig) Run() (*Report, error) {
	f, err := os.Open(c.Path)
	if err != nil {
		return nil, fmt.Errorf("scores file: %w", err)
	}
	pairs, scores, failed, err := ReadScores(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Path, err)
	}
	if c.Dataset == "" {
		c.Dataset = filepath.Base(c.Path)
	}
	return Evaluate(pairs, scores, Options{Model: c.Label, Dataset: c.Dataset, Date: time.Now().UTC(), Folds: c.Folds, FailedImages: failed})
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
