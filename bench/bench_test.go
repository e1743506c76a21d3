package bench

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/facegate/facegate/enroll"
	"github.com/facegate/facegate/eval"
)

func TestStats(t *testing.T) {
	s := StatsOf([]float64{4, 1, 3, 2, 5})
	if s.N != 5 || s.Mean != 3 || s.P50 != 3 || s.Min != 1 || s.Max != 5 || s.P95 != 4.8 {
		t.Fatalf("stats: %+v", s)
	}
	if s := StatsOf(nil); s != (Stats{}) {
		t.Errorf("no samples: %+v", s)
	}
	if s := StatsOf([]float64{7}); s.P50 != 7 || s.P95 != 7 {
		t.Errorf("one sample: %+v", s)
	}
	if Ratio(1, 0) != 0 || Ratio(2, 3) != 0.667 || MS(1500*time.Microsecond) != 1.5 {
		t.Error("Ratio or MS")
	}
}

func TestProcess(t *testing.T) {
	rss, err := RSS()
	if err != nil || rss < 1<<20 {
		t.Errorf("RSS %d: %v", rss, err)
	}
	c0 := CPUTime()
	for x := 0; CPUTime()-c0 < time.Millisecond; x++ {
		_ = x * x
	}
	m := NewMachine(Build{Facegate: "v", TensorFlow: "tf"})
	m.Finish()
	if m.CPUs < 1 || m.Facegate != "v" || m.End.Before(m.Start) || !strings.Contains(m.Describe(), "libtensorflow tf") {
		t.Errorf("machine %+v", m)
	}
}

func TestWriteJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "r.json")
	if err := WriteJSON(path, map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	var back map[string]int
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &back); err != nil || back["a"] != 1 {
		t.Errorf("%s: %v", b, err)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Error("temporary file left behind")
	}
}

func TestRandomGalleryAndPairs(t *testing.T) {
	m, err := RandomGallery(enroll.Scorer{Metric: "euclidean", Dim: 8}, 30, 7)
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != 30 {
		t.Errorf("%d people, want 30", m.Len())
	}
	path := filepath.Join(t.TempDir(), "pairs.tsv")
	if err := os.WriteFile(path, []byte("a/1.jpg\ta/2.jpg\t1\na/1.jpg\tb/1.jpg\t0\nb/1.jpg\tc/1.jpg\t0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for limit, want := range map[int]int{0: 3, 2: 2, 5: 3} {
		pairs, err := ReadPairs(path, limit)
		if err != nil || len(pairs) != want {
			t.Errorf("limit %d: %d pairs, %v", limit, len(pairs), err)
		}
	}
	if _, err := ReadPairs("", 0); !errors.Is(err, ErrConfig) {
		t.Errorf("no file: %v", err)
	}
	var perr *eval.ParseError
	_ = os.WriteFile(path, []byte("bad line\n"), 0o644)
	if _, err := ReadPairs(path, 0); !errors.As(err, &perr) {
		t.Errorf("bad file: %v", err)
	}
}
