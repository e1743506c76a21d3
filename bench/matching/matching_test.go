package matching

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/facegate/facegate/bench"
)

// A smoke test: a few iterations on small galleries; the report must have
// the right shape and consistent counts. No timings are asserted (CI
// machines vary); `make bench-matching` measures.
func TestMatchingSmoke(t *testing.T) {
	var out bytes.Buffer
	rep, err := Config{People: []int{10, 50}, Dims: []int{8}, Iters: 3, Build: bench.Build{Facegate: "test"}}.Run(context.Background(), &out)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Kind != "matching" || len(back.Cases) != 2 || back.Machine.Facegate != "test" || back.Machine.End.Before(back.Machine.Start) {
		t.Fatalf("report: %+v", back)
	}
	for i, c := range back.Cases {
		if c.People != []int{10, 50}[i] || c.Dim != 8 || c.Bytes != int64(c.People*8*4) || c.Iters != 3 {
			t.Errorf("case %d: %+v", i, c)
		}
		if c.IdentifyMS.N != 3 || c.BoundMS.N != 3 || c.Ratio <= 0 || c.IdentifyGBps <= 0 || c.BoundGBps <= 0 {
			t.Errorf("case %d: %+v", i, c)
		}
	}
	if !strings.Contains(out.String(), "scan bound ms p50") || strings.Count(out.String(), "\n") != 5 {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestMatchingConfig(t *testing.T) {
	for _, c := range []Config{{}, {People: []int{10}}, {People: []int{0}, Dims: []int{8}, Iters: 1}, {People: []int{10}, Dims: []int{8}}} {
		if _, err := c.Run(context.Background(), &bytes.Buffer{}); !errors.Is(err, bench.ErrConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}
