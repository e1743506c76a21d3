package store

import (
	"bufio"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The crash test re-executes this test binary as a child that enrolls in a
// loop and is killed with SIGKILL at random moments. Before every mutation
// the child prints "B <op> <args>" and after the commit returns "C"; the
// parent replays that log, so it knows the committed state and the single
// operation that may have been in flight, and checks that the gallery holds
// exactly one of the two.

const (
	envCrashHelper = "FACEGATE_STORE_CRASH_HELPER"
	envCrashDB     = "FACEGATE_STORE_CRASH_DB"
	envCrashSeed   = "FACEGATE_STORE_CRASH_SEED"
	crashDim       = 128
)

var crashModel = Model{Name: "crash-test", Version: "1"}

// crashEmbedding is the deterministic embedding of a person's j-th template.
func crashEmbedding(id string, j int) []float32 {
	h := fnv.New64a()
	h.Write([]byte(id))
	seed := h.Sum64()
	e := make([]float32, crashDim)
	for i := range e {
		e[i] = float32(math.Sin(float64(seed%9973) + float64(j*crashDim+i)))
	}
	return e
}

func crashTemplates(id string, from, n int) []Template {
	ts := make([]Template, n)
	for j := range ts {
		ts[j] = Template{Model: crashModel, Embedding: crashEmbedding(id, from+j)}
	}
	return ts
}

func crashKey(t testing.TB) Key { return testKey(t, "crash", 0x42) }

// TestHelperProcess is the child; it does nothing unless started by
// TestCrashConsistency.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(envCrashHelper) != "1" {
		return
	}
	s, err := Open(os.Getenv(envCrashDB), crashKey(t), Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper open:", err)
		os.Exit(2)
	}
	counts := map[string]int{}
	if err := s.ForEach(func(p Person) error { counts[p.ID] = p.NumTemplates; return nil }); err != nil {
		fmt.Fprintln(os.Stderr, "helper load:", err)
		os.Exit(2)
	}
	seed, _ := strconv.ParseUint(os.Getenv(envCrashSeed), 10, 64)
	rng := rand.New(rand.NewPCG(seed, 7))
	out := bufio.NewWriter(os.Stdout)
	log := func(format string, args ...any) {
		fmt.Fprintf(out, format+"\n", args...)
		out.Flush()
	}
	anyID := func() string {
		ids := make([]string, 0, len(counts))
		for id := range counts {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		return ids[rng.IntN(len(ids))]
	}
	for i := 0; ; i++ {
		var err error
		op := rng.IntN(10)
		if len(counts) > 200 && op < 7 {
			op = 9 // keep the gallery small so that every round stays fast
		}
		switch {
		case op < 5 || len(counts) < 3: // enroll one person
			id, n := fmt.Sprintf("p%d-%d", seed, i), 1+rng.IntN(5)
			log("B put %s %d", id, n)
			err = s.Put(Person{ID: id, DisplayName: "Name " + id, Source: Source{Kind: "crash"}, Templates: crashTemplates(id, 0, n)})
			counts[id] = n
		case op < 7: // a batch, which must be all or nothing
			var ps []Person
			var args []string
			for j := 0; j < 10; j++ {
				id := fmt.Sprintf("p%d-%d-%d", seed, i, j)
				ps = append(ps, Person{ID: id, Templates: crashTemplates(id, 0, 1)})
				args = append(args, id)
				counts[id] = 1
			}
			log("B putall %s", strings.Join(args, " "))
			err = s.PutAll(ps...)
		case op < 9: // add templates
			id := anyID()
			k := 1 + rng.IntN(2)
			if counts[id]+k > MaxTemplates {
				continue
			}
			log("B add %s %d", id, k)
			err = s.AddTemplates(id, crashTemplates(id, counts[id], k)...)
			counts[id] += k
		default:
			id := anyID()
			log("B del %s", id)
			err = s.Delete(id)
			delete(counts, id)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(3)
		}
		log("C")
	}
}

// applyOp applies one logged operation to a model of the gallery (id →
// template count).
func applyOp(state map[string]int, line string) {
	f := strings.Fields(line)
	switch f[1] {
	case "put":
		n, _ := strconv.Atoi(f[3])
		state[f[2]] = n
	case "putall":
		for _, id := range f[2:] {
			state[id] = 1
		}
	case "add":
		n, _ := strconv.Atoi(f[3])
		state[f[2]] += n
	case "del":
		delete(state, f[2])
	}
}

func clone(m map[string]int) map[string]int {
	c := make(map[string]int, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func TestCrashConsistency(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	path := filepath.Join(t.TempDir(), "state", "gallery.db")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	committed := map[string]int{}
	const rounds = 8
	totalOps := 0
	for round := 0; round < rounds; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), envCrashHelper+"=1", envCrashDB+"="+path, envCrashSeed+"="+strconv.Itoa(round))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1<<16)
		go func() {
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Kill at a random moment after the child started committing.
		var log []string
		select {
		case l, ok := <-lines:
			if !ok {
				cmd.Wait()
				t.Fatalf("round %d: helper exited early: %s", round, stderr.String())
			}
			log = append(log, l)
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("round %d: helper did not start", round)
		}
		time.Sleep(time.Duration(20+rng.IntN(400)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for l := range lines {
			log = append(log, l)
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: helper ended with %v, not SIGKILL: %s", round, err, stderr.String())
		}

		// Replay the log: committed state, and the one op that may be in flight.
		var inflight string
		for _, l := range log {
			if l == "C" {
				applyOp(committed, inflight)
				inflight = ""
				totalOps++
				continue
			}
			inflight = l
		}
		after := clone(committed)
		if inflight != "" {
			applyOp(after, inflight)
		}

		s, err := Open(path, crashKey(t), Options{})
		if err != nil {
			t.Fatalf("round %d: gallery does not open after kill -9: %v", round, err)
		}
		rep, err := s.Check()
		if err != nil {
			s.Close()
			t.Fatalf("round %d: inconsistent gallery after kill -9: %v", round, err)
		}
		got := map[string]int{}
		err = s.ForEach(func(p Person) error {
			got[p.ID] = len(p.Templates)
			for j, tm := range p.Templates {
				if tm.Model != crashModel || !reflect.DeepEqual(tm.Embedding, crashEmbedding(p.ID, j)) {
					return fmt.Errorf("person %s template %d has wrong content", p.ID, j)
				}
			}
			return nil
		})
		s.Close()
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		landed := "no"
		switch {
		case reflect.DeepEqual(got, committed):
		case reflect.DeepEqual(got, after):
			committed = after // the in-flight op had committed before the kill
			landed = "yes"
		default:
			t.Fatalf("round %d: gallery (%d people) is neither the committed state (%d) nor that plus %.60q (%d)",
				round, len(got), len(committed), inflight, len(after))
		}
		t.Logf("round %d: killed after %d log lines; %d people, %d templates; in flight: %.40q (committed: %s)", round, len(log), rep.People, rep.Templates, inflight, landed)
	}
	if totalOps < rounds {
		t.Errorf("only %d operations committed in %d rounds; the test did not exercise the store", totalOps, rounds)
	}
	t.Logf("%d operations committed across %d kills", totalOps, rounds)
}
