package daemontest

import (
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// LogBuffer is an io.Writer safe for concurrent use: a process's stdout
// and stderr.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// RunConfig is what a `facegate run` with its embedded MQTT broker needs
// from a test: its device, state, models, camera, broker port and keys.
type RunConfig struct {
	Device, State, Models  string
	Camera                 string
	FPS                    float64
	Loop                   bool
	MQTTPort               int
	EnrollKeys, GalleryKey string
	MetricsAddr            string // "" turns /metrics off
}

// Env returns the FACEGATE_ variables of c (the caller adds the rest of
// the environment, EnvWithout("FACEGATE_"), and its own settings).
func (c RunConfig) Env() []string {
	return []string{"FACEGATE_DEVICE_ID=" + c.Device, "FACEGATE_STATE_DIR=" + c.State, "FACEGATE_MODELS_DIR=" + c.Models,
		"FACEGATE_CAMERA=" + c.Camera, "FACEGATE_CAMERA_FPS=" + strconv.FormatFloat(c.FPS, 'g', -1, 64), "FACEGATE_CAMERA_LOOP=" + strconv.FormatBool(c.Loop),
		"FACEGATE_MQTT_EMBEDDED=true", "FACEGATE_MQTT_EMBEDDED_ADDR=127.0.0.1:" + strconv.Itoa(c.MQTTPort),
		"FACEGATE_ENROLL_KEYS=" + c.EnrollKeys, "FACEGATE_GALLERY_KEY=" + c.GalleryKey, "FACEGATE_LOG_LEVEL=info",
		"FACEGATE_METRICS_ADDR=" + c.MetricsAddr, "FACEGATE_MQTT_HA_DISCOVERY=false"}
}

// Process is one facegate process (a gate, a NATS member) whose output
// is kept. Start it again after it has exited to restart it.
type Process struct {
	Name string   // in messages
	Bin  string   // the binary
	Args []string // e.g. "run"
	Env  []string // the whole environment

	Cmd     *exec.Cmd
	Logs    *LogBuffer // its stdout and stderr, of the latest start
	Started time.Time

	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done is closed
}

// Start starts the process with fresh logs.
func (p *Process) Start() error {
	p.Logs = &LogBuffer{}
	p.done = make(chan struct{})
	p.Cmd = exec.Command(p.Bin, p.Args...)
	p.Cmd.Env = p.Env
	p.Cmd.Stdout, p.Cmd.Stderr = p.Logs, p.Logs
	p.Cmd.WaitDelay = 5 * time.Second // Wait returns even if something else holds the log pipe
	p.Started = time.Now()
	if err := p.Cmd.Start(); err != nil {
		close(p.done)
		return fmt.Errorf("start %s (%s): %w", p.Name, p.Bin, err)
	}
	cmd, done := p.Cmd, p.done
	go func() { p.err = cmd.Wait(); close(done) }()
	return nil
}

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the process's exit status, once Done is closed.
func (p *Process) Err() error { return p.err }

// Running reports whether the process was started and has not exited.
func (p *Process) Running() bool {
	if p.Cmd == nil || p.Cmd.Process == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// ExitedError is WaitLog's error when the process exits first.
type ExitedError struct {
	Name, Want string
	Err        error // the exit status
}

func (e *ExitedError) Error() string {
	return fmt.Sprintf("%s exited waiting for %q: %v", e.Name, e.Want, e.Err)
}

// WaitLog polls the logs every poll until a line contains s, and returns
// when it was seen; an *ExitedError when the process exits first, another
// error after d.
func (p *Process) WaitLog(s string, d, poll time.Duration) (time.Time, error) {
	deadline := time.Now().Add(d)
	for !strings.Contains(p.Logs.String(), s) {
		select {
		case <-p.done:
			return time.Time{}, &ExitedError{Name: p.Name, Want: s, Err: p.err}
		case <-time.After(poll):
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%s: no %q after %s", p.Name, s, d)
		}
	}
	return time.Now(), nil
}

// Stop sends SIGTERM and waits 30 s for the exit; a process still running
// then is killed and the test fails.
func (p *Process) Stop(t testing.TB) {
	if !p.Running() {
		return
	}
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.Cmd.Process.Kill()
		select {
		case <-p.done:
			t.Errorf("%s did not stop within 30 s of SIGTERM", p.Name)
		case <-time.After(30 * time.Second):
			t.Errorf("%s (pid %d) still running 30 s after SIGTERM and 30 s after SIGKILL", p.Name, p.Cmd.Process.Pid)
		}
	}
}

// Kill9 kills the process with SIGKILL and waits for it.
func (p *Process) Kill9() {
	if !p.Running() {
		return
	}
	p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}
