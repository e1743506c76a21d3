package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facegate/facegate/infer"
)

// Smoke tests of `facegate bench`: each mode runs a few iterations on small
// inputs and its JSON report must have the right shape and consistent
// counts. They assert no timings (CI machines vary); `make bench` measures.

func runBench(t *testing.T, args ...string) (string, []byte) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append(append([]string{"bench"}, args...), "-json", out), &stdout, &stderr)
	if err != nil {
		t.Fatalf("facegate bench %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, stdout.String(), stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), b
}

// benchPython is the venv Python with TensorFlow, or "" outside CI when
// there is none.
func benchPython(t *testing.T) string {
	t.Helper()
	venv := os.Getenv("FACEGATE_VENV")
	if venv == "" {
		venv = filepath.Join("..", "..", ".venv")
	}
	p := filepath.Join(venv, "bin", "python")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no venv Python at %s under CI=true (make deps): %v", p, err)
		}
		return ""
	}
	return p
}

func TestBenchEmbedSmoke(t *testing.T) {
	dir := infer.TestModelDir(t, "test-tiny")
	args := []string{"-model", dir, "-batch", "1,3", "-iters", "2", "-rounds", "2", "-warmup", "1", "-threads", "1"}
	py := benchPython(t)
	if py != "" {
		args = append(args, "-python", "-python-bin", py, "-python-script", filepath.Join("..", "..", "bench", "python_tf.py"))
	} else {
		t.Log("no venv Python: Go side only")
	}
	stdout, raw := runBench(t, args...)
	var rep EmbedReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Kind != "embed" || len(rep.Models) != 1 || rep.Settings.IntraOpThreads != 1 || rep.Settings.InterOpThreads != 1 {
		t.Fatalf("report: %+v", rep)
	}
	if rep.Machine.CPUs <= 0 || rep.Machine.TensorFlow == "" || rep.Machine.End.Before(rep.Machine.Start) {
		t.Errorf("machine: %+v", rep.Machine)
	}
	m := rep.Models[0]
	if m.Name != "test-tiny" || m.Signature != "serving_default" || len(m.Batches) != 2 || len(m.Devices) == 0 {
		t.Fatalf("model: %+v", m)
	}
	for i, b := range m.Batches {
		if want := []int{1, 3}[i]; b.Batch != want || b.Iters != 2 {
			t.Errorf("batch %d: %+v", i, b)
		}
		if b.Go.MS.N != 4 || b.Go.MS.P50 <= 0 || b.Go.FacesPerS <= 0 || len(b.Go.RoundsP50) != 2 || b.Go.MS.Min > b.Go.MS.P50 || b.Go.MS.P50 > b.Go.MS.Max {
			t.Errorf("batch %d go: %+v", b.Batch, b.Go)
		}
		if py == "" {
			continue
		}
		if b.Py == nil || b.Py.MS.N != 4 || b.RatioP50 <= 0 || b.RatioCPU <= 0 || len(b.RatioRounds) != 2 || b.RatioRoundsMedian <= 0 {
			t.Errorf("batch %d python: %+v %+v", b.Batch, b.Py, b)
		}
		// The same graph on the same bytes: the outputs must agree.
		if b.MaxAbsDiff == nil || *b.MaxAbsDiff > 1e-4 {
			t.Errorf("batch %d: Go and Python outputs differ by %v", b.Batch, b.MaxAbsDiff)
		}
	}
	if py != "" && (m.Python == nil || m.Python.Intra != 1 || m.Python.Inter != 1 || !strings.HasPrefix(m.Python.TF, "2.18")) {
		t.Errorf("python info: %+v", m.Python)
	}
	if !strings.Contains(stdout, "ms/batch") {
		t.Errorf("no table in output:\n%s", stdout)
	}
}

func TestBenchMatchingSmoke(t *testing.T) {
	_, raw := runBench(t, "-matching", "-people", "10,50", "-dims", "8", "-iters", "3")
	var rep MatchingReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Kind != "matching" || len(rep.Cases) != 2 {
		t.Fatalf("report: %+v", rep)
	}
	for i, c := range rep.Cases {
		if c.People != []int{10, 50}[i] || c.Dim != 8 || c.Bytes != int64(c.People*8*4) || c.Iters != 3 {
			t.Errorf("case %d: %+v", i, c)
		}
		if c.IdentifyMS.N != 3 || c.BoundMS.N != 3 || c.Ratio <= 0 || c.IdentifyGBps <= 0 || c.BoundGBps <= 0 {
			t.Errorf("case %d: %+v", i, c)
		}
	}
}

func TestStats(t *testing.T) {
	s := statsOf([]float64{4, 1, 3, 2, 5})
	if s.N != 5 || s.Mean != 3 || s.P50 != 3 || s.Min != 1 || s.Max != 5 || s.P95 != 4.8 {
		t.Fatalf("stats: %+v", s)
	}
}

// e2eArgs point at the shared LFW data and the pipeline's models.
func e2eArgs(t *testing.T) (args []string, pairs string) {
	t.Helper()
	data := infer.TestDataDir(t)
	det := infer.TestModelDir(t, "blazeface-short")
	emb := infer.TestModelDir(t, "dlib-resnet-v1")
	pairs = filepath.Join(data, "pairs-lfw-folds1-5.tsv")
	return []string{"-detector", det, "-model", emb, "-pairs", pairs, "-root", filepath.Join(data, "faces"), "-threads", "1"}, pairs
}

func TestBenchE2ESmoke(t *testing.T) {
	args, pairs := e2eArgs(t)
	abs, err := filepath.Abs(pairs)
	if err != nil {
		t.Fatal(err)
	}
	// A peer timing file for the same 4 images (those of pairs 1-2).
	peer := filepath.Join(t.TempDir(), "peer.timing.json")
	pt := map[string]any{
		"system": "face_recognition", "pairs_file": abs, "pairs": 2, "images": 4, "faces": 4, "fta": 0,
		"settings":         map[string]any{"threads": 1},
		"machine":          map[string]any{"loadavg_start": []float64{1, 1, 1}, "loadavg_end": []float64{1, 1, 1}},
		"per_face_wall_ms": map[string]any{"total": map[string]any{"n": 4, "mean": 1000.0}},
		"per_face_cpu_ms":  map[string]any{"total": map[string]any{"n": 4, "mean": 900.0}},
	}
	b, _ := json.Marshal(pt)
	if err := os.WriteFile(peer, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, raw := runBench(t, append(args, "-e2e", "-pairs-limit", "2", "-gallery", "20", "-peer-timing", peer)...)
	var rep E2EReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Kind != "e2e" || rep.Pairs != 2 || rep.Images != 4 || rep.Faces+rep.FTA != 4 || rep.Faces == 0 || rep.Gallery != 20 {
		t.Fatalf("report: %+v", rep)
	}
	for _, s := range []string{"decode", "detect", "align", "embed", "match", "total"} {
		if rep.PerFace[s].N != rep.Faces || rep.PerFace[s].Mean <= 0 {
			t.Errorf("stage %s: %+v", s, rep.PerFace[s])
		}
	}
	if tot := rep.PerFace["total"].Mean; tot < rep.PerFace["embed"].Mean || tot < rep.PerFace["detect"].Mean {
		t.Errorf("total %v below a stage: %+v", tot, rep.PerFace)
	}
	if rep.Peer == nil || !rep.Peer.SameImages || rep.Peer.SpeedupWall <= 0 || rep.Peer.WallMean != 1000 {
		t.Fatalf("peer: %+v", rep.Peer)
	}
}

func TestBenchMemorySmoke(t *testing.T) {
	args, _ := e2eArgs(t)
	_, raw := runBench(t, append(args, "-memory", "-frames", "4", "-sample-every", "2")...)
	var rep MemoryReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Kind != "memory" || rep.Frames != 4 || len(rep.Samples) != 2 || rep.Samples[1].Frame != 4 {
		t.Fatalf("report: %+v", rep)
	}
	if rep.RSSFirst <= 0 || rep.RSSLast <= 0 || rep.FirstAt != 2 || rep.LastAt != 4 {
		t.Fatalf("rss: %+v", rep)
	}
}

func TestBenchTrackingSmoke(t *testing.T) {
	args, _ := e2eArgs(t)
	clip := filepath.Join(infer.TestDataDir(t), "sequences", "otb_girl")
	// Threshold 100 reuses whenever allowed, so the tracked path runs; 1
	// detects almost always.
	stdout, raw := runBench(t, append(args, "-tracking", "-clip", clip, "-clip-frames", "10",
		"-track-threshold", "1,100", "-track-max-frames", "3", "-ref-frames", "2")...)
	var rep TrackingReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Kind != "tracking" || len(rep.Clips) != 1 || rep.Threshold.Value <= 0 || rep.RefFrames != 2 {
		t.Fatalf("report: %+v", rep)
	}
	c := rep.Clips[0]
	if c.Clip != "otb_girl" || c.Frames != 10 || c.Width != 128 || c.Height != 96 || c.FramesWithFace == 0 || c.RefFrames != 2 || len(c.Results) != 2 {
		t.Fatalf("clip: %+v", c)
	}
	if c.FreshWall["detect"].N != 10 || c.FreshWall["embed"].N != c.FramesWithFace || c.FreshWall["total"].Mean < c.FreshWall["detect"].Mean {
		t.Errorf("fresh times: %+v", c.FreshWall)
	}
	for _, r := range c.Results {
		detected := 0
		for _, n := range r.Detected {
			detected += n
		}
		if r.Frames != 10 || r.Skipped+detected != r.Frames || r.Distance.N > r.Skipped || r.CheckUS.N != r.Frames || r.Flips != r.FlipAccepts+r.FlipRejects {
			t.Errorf("setting %+v: inconsistent counts", r)
		}
		if r.Skipped > 0 && r.TrackedMS >= r.FreshMS {
			t.Logf("setting %g/%d: tracked %.2f ms not under fresh %.2f ms (load?)", r.Threshold, r.MaxFrames, r.TrackedMS, r.FreshMS)
		}
	}
	// Threshold 100, max 3 frames: detect, reuse 3, detect, ... once a face
	// is remembered.
	if hi := c.Results[1]; hi.Threshold != 100 || hi.Skipped < 6 || hi.Detected["max-frames"] < 1 || hi.Distance.N == 0 {
		t.Errorf("threshold 100: %+v", hi)
	}
	if len(rep.Pooled) != 2 || rep.Pooled[1].Skipped != c.Results[1].Skipped || rep.Pooled[1].Distance.N != c.Results[1].Distance.N {
		t.Errorf("pooled: %+v", rep.Pooled)
	}
	if !strings.Contains(stdout, "dist tracked-fresh") {
		t.Errorf("no table in output:\n%s", stdout)
	}
}

func TestBenchUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"bench", "-e2e", "-matching"}, &stdout, &stderr); err == nil {
		t.Fatal("two modes at once accepted")
	}
	if err := run(context.Background(), []string{"bench", "-batch", "0"}, &stdout, &stderr); err == nil {
		t.Fatal("batch 0 accepted")
	}
	if err := run(context.Background(), []string{"bench", "-tracking", "-memory"}, &stdout, &stderr); err == nil {
		t.Fatal("-tracking with -memory accepted")
	}
	for _, bad := range [][]string{{"-track-threshold", "0"}, {"-track-threshold", "x"}, {"-track-max-frames", "0"}} {
		if err := run(context.Background(), append([]string{"bench", "-tracking", "-clip", "x"}, bad...), &stdout, &stderr); err == nil {
			t.Fatalf("%v accepted", bad)
		}
	}
}
