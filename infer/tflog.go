package infer

import (
	"bufio"
	"bytes"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TensorFlow's own logging is quiet unless asked for. Its C++ runtime
// writes to stderr at INFO, some of it before any Go code runs, through two
// loggers:
//
//   - TensorFlow's (tsl), which follows TF_CPP_MIN_LOG_LEVEL, read at its
//     first message, while the library loads. tflog_linux.c sets it to 2
//     (errors only) before that, unless it is already set or
//     FACEGATE_LOG_LEVEL=debug.
//   - abseil's, in a private copy inside libtensorflow_cc that reads no
//     variable and that nothing outside can reach. On CPU it speaks once,
//     while the first SavedModel loads: "WARNING: All log messages before
//     absl::InitializeLog() ..." and "I0000 ... mlir_graph_optimization_pass.cc:401]
//     MLIR V1 optimization pass is not enabled". Load captures stderr
//     around the first SavedModel load (quietFirstLoad), drops the lines
//     below TF_CPP_MIN_LOG_LEVEL (logged at debug level instead) and passes
//     the rest on.
//
// So a person sees facegate's messages only; FACEGATE_LOG_LEVEL=debug (or
// TF_CPP_MIN_LOG_LEVEL=0) shows TensorFlow's chatter again.

// TFLogLevelEnv is TensorFlow's minimum log level variable: 0 INFO,
// 1 WARNING, 2 ERROR, 3 FATAL.
const TFLogLevelEnv = "TF_CPP_MIN_LOG_LEVEL"

// captureWait bounds how long the end of a capture waits for the pipe to
// drain (a child process started meanwhile may hold it open).
const captureWait = time.Second

var firstLoad sync.Once

// quietFirstLoad starts capturing stderr if this is the process's first
// model load and TF_CPP_MIN_LOG_LEVEL hides INFO; the function it returns
// ends the capture (a no-op otherwise). Other goroutines' stderr output in
// between is passed on when the capture ends, late but whole.
func quietFirstLoad() (done func()) {
	done = func() {}
	firstLoad.Do(func() {
		level, err := strconv.Atoi(strings.TrimSpace(os.Getenv(TFLogLevelEnv)))
		if err != nil || level < 1 {
			return
		}
		stop, err := captureStderr()
		if err != nil {
			slog.Debug("infer: TensorFlow's first-load logging not captured", "err", err)
			return
		}
		done = func() {
			passOn, chatter := splitTFLog(stop(), level)
			if len(passOn) > 0 {
				_, _ = os.Stderr.Write(passOn)
			}
			for _, l := range chatter {
				slog.Debug("tensorflow", "log", l)
			}
		}
	})
	return done
}

// tfLogLine matches a line of TensorFlow's logging (tsl, then abseil's
// format); the group is its severity letter.
var tfLogLine = regexp.MustCompile(`^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: ([IWEF]) \S+:\d+\]|([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\])`)

// abslPreface is what abseil writes before its first message.
const abslPreface = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"

// splitTFLog splits captured stderr into what to pass on and TensorFlow's
// lines below level (0 INFO, 1 WARNING, 2 ERROR, 3 FATAL).
func splitTFLog(out []byte, level int) (passOn []byte, chatter []string) {
	var keep bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		drop := l == abslPreface && level > 0
		if m := tfLogLine.FindStringSubmatch(l); m != nil {
			drop = strings.Index("IWEF", m[1]+m[2]) < level
		}
		if drop {
			chatter = append(chatter, l)
		} else {
			keep.WriteString(l)
			keep.WriteByte('\n')
		}
	}
	if sc.Err() != nil { // a line over 1 MiB: pass everything on
		return out, nil
	}
	return keep.Bytes(), chatter
}
