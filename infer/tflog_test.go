package infer

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// tflogHelperEnv makes the test binary a helper process: it loads the model
// in that folder, prints TF_CPP_MIN_LOG_LEVEL as it sees it and exits.
const tflogHelperEnv = "FACEGATE_TFLOG_HELPER"

func TestMain(m *testing.M) {
	if dir := os.Getenv(tflogHelperEnv); dir != "" {
		m, err := Load(dir, Options{IntraOpThreads: 1, InterOpThreads: 1})
		if err != nil {
			fmt.Println("load:", err)
			os.Exit(1)
		}
		m.Close()
		fmt.Printf("loaded, %s=%q\n", TFLogLevelEnv, os.Getenv(TFLogLevelEnv))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// anyTFLine matches TensorFlow's and abseil's log lines of any severity.
var anyTFLine = regexp.MustCompile(`(?m)^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] |[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ |WARNING: All log messages before absl)`)

// TestTensorFlowQuiet runs a process that loads a real SavedModel, as
// facegate does, and reads its stderr: nothing by default, TensorFlow's
// chatter (SavedModel loading, abseil's MLIR line, oneDNN where the CPU has it on) at debug level.
func TestTensorFlowQuiet(t *testing.T) {
	dir := TestModelDir(t, "test-tiny")
	var base []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, TFLogLevelEnv+"=") && !strings.HasPrefix(kv, "FACEGATE_LOG_LEVEL=") {
			base = append(base, kv)
		}
	}
	cases := []struct {
		name      string
		env       []string
		level     string // TF_CPP_MIN_LOG_LEVEL in the process
		chatty    bool   // TensorFlow's INFO lines on stderr
		wantLines []string
	}{
		{name: "default", level: "2"},
		{name: "debug", env: []string{"FACEGATE_LOG_LEVEL=debug"}, level: "", chatty: true,
			// Not "oneDNN custom operations are on": TensorFlow prints it
			// only where it turns oneDNN on by default, which depends on
			// the CPU (absent on a 2-core AMD EPYC VM without AVX-512).
			wantLines: []string{"Reading SavedModel from", "MLIR V1 optimization pass is not enabled"}},
		{name: "info", env: []string{"FACEGATE_LOG_LEVEL=info"}, level: "2"},
		{name: "tf-warning", env: []string{TFLogLevelEnv + "=1"}, level: "1"},
		{name: "tf-info", env: []string{TFLogLevelEnv + "=0"}, level: "0", chatty: true, wantLines: []string{"Reading SavedModel from"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(append(append([]string(nil), base...), c.env...), tflogHelperEnv+"="+dir)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("helper: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
			}
			if want := fmt.Sprintf("loaded, %s=%q\n", TFLogLevelEnv, c.level); stdout.String() != want {
				t.Errorf("helper printed %q, want %q", stdout.String(), want)
			}
			switch {
			case !c.chatty && stderr.Len() > 0:
				t.Errorf("stderr is not empty:\n%s", stderr.String())
			case c.chatty && !anyTFLine.Match(stderr.Bytes()):
				t.Errorf("no TensorFlow log line on stderr:\n%s", stderr.String())
			}
			for _, w := range c.wantLines {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
		})
	}
}

func TestSplitTFLog(t *testing.T) {
	const (
		tslInfo  = "2026-12-05 07:03:27.160261: I tensorflow/cc/saved_model/reader.cc:83] Reading SavedModel from: /m"
		tslWarn  = "2026-12-05 07:03:27.160261: W tensorflow/core/framework/cpu_allocator_impl.cc:83] Allocation exceeds 10% of free system memory."
		tslError = "2026-12-05 07:03:27.160261: E tensorflow/core/framework/op_kernel.cc:1828] OP_REQUIRES failed"
		abslInfo = "I0000 00:00:1796454207.184635   14348 mlir_graph_optimization_pass.cc:401] MLIR V1 optimization pass is not enabled"
		abslErr  = "E0000 00:00:1796454207.184635   14348 foo.cc:1] broken"
		ours     = `time=2026-12-05T07:03:24.817Z level=ERROR msg="facegate failed" err="I0000 00:00:1.2 1 x.cc:1] quoted"`
	)
	out := strings.Join([]string{abslPreface, tslInfo, ours, tslWarn, abslInfo, tslError, abslErr, "plain text from C"}, "\n") + "\n"
	for _, c := range []struct {
		level   int
		keep    []string
		dropped int
	}{
		{0, []string{abslPreface, tslInfo, ours, tslWarn, abslInfo, tslError, abslErr, "plain text from C"}, 0},
		{1, []string{ours, tslWarn, tslError, abslErr, "plain text from C"}, 3},
		{2, []string{ours, tslError, abslErr, "plain text from C"}, 4},
		{3, []string{ours, "plain text from C"}, 6},
	} {
		passOn, chatter := splitTFLog([]byte(out), c.level)
		if want := strings.Join(c.keep, "\n") + "\n"; string(passOn) != want {
			t.Errorf("level %d: passed on\n%s\nwant\n%s", c.level, passOn, want)
		}
		if len(chatter) != c.dropped {
			t.Errorf("level %d: dropped %d lines %q, want %d", c.level, len(chatter), chatter, c.dropped)
		}
	}
}

// TestCaptureStderr: what goes to file descriptor 2 while captured comes
// back from stop, and nothing after stop does.
func TestCaptureStderr(t *testing.T) {
	stop, err := captureStderr()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(os.Stderr, "captured line")
	got := stop()
	fmt.Fprintln(os.Stderr, "after the capture (expected in the test's output)")
	if string(got) != "captured line\n" {
		t.Fatalf("captured %q", got)
	}
}
