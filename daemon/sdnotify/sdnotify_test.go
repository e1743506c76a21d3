package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// listen opens a real unix datagram socket standing in for systemd and
// points $NOTIFY_SOCKET at it. The directory is short because socket paths
// are limited to 108 bytes.
func listen(t *testing.T) (*net.UnixConn, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", path, err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv(EnvNotifySocket, path)
	return conn, path
}

// recv reads one datagram or fails after timeout.
func recv(t *testing.T, conn *net.UnixConn, timeout time.Duration) string {
	t.Helper()
	msg, ok := tryRecv(conn, timeout)
	if !ok {
		t.Fatalf("no datagram within %s", timeout)
	}
	return msg
}

func tryRecv(conn *net.UnixConn, timeout time.Duration) (string, bool) {
	buf := make([]byte, 4096)
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	n, err := conn.Read(buf)
	if err != nil {
		return "", false
	}
	return string(buf[:n]), true
}

func TestNotifyWithoutSystemdIsNotAnError(t *testing.T) {
	t.Setenv(EnvNotifySocket, "")
	n := FromEnv()
	for name, f := range map[string]func() (bool, error){
		"ready": n.Ready, "stopping": n.Stopping, "watchdog": n.Watchdog,
		"status": func() (bool, error) { return n.Status("x") },
	} {
		sent, err := f()
		if sent || err != nil {
			t.Errorf("%s without NOTIFY_SOCKET = (%v, %v), want (false, nil)", name, sent, err)
		}
	}
	var zero *Notifier
	if sent, err := zero.Ready(); sent || err != nil {
		t.Errorf("nil Notifier Ready = (%v, %v), want (false, nil)", sent, err)
	}
}

func TestNotifyStates(t *testing.T) {
	conn, _ := listen(t)
	n := FromEnv()
	long := strings.Repeat("s", 2000)
	tests := []struct {
		name string
		send func() (bool, error)
		want string
	}{
		{"ready", n.Ready, "READY=1"},
		{"stopping", n.Stopping, "STOPPING=1"},
		{"reloading", n.Reloading, "RELOADING=1"},
		{"watchdog", n.Watchdog, "WATCHDOG=1"},
		{"status", func() (bool, error) { return n.Status("model loaded") }, "STATUS=model loaded"},
		{"status newline", func() (bool, error) { return n.Status("a\nREADY=1") }, "STATUS=a READY=1"},
		{"status long", func() (bool, error) { return n.Status(long) }, "STATUS=" + long[:maxStatusLength]},
		{"raw", func() (bool, error) { return n.Notify("READY=1\nSTATUS=up") }, "READY=1\nSTATUS=up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sent, err := tt.send()
			if !sent || err != nil {
				t.Fatalf("send = (%v, %v), want (true, nil)", sent, err)
			}
			if got := recv(t, conn, time.Second); got != tt.want {
				t.Errorf("received %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNotifyAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@facegate-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen abstract %s: %v", name, err)
	}
	defer conn.Close()
	sent, err := New(name).Ready()
	if !sent || err != nil {
		t.Fatalf("Ready = (%v, %v)", sent, err)
	}
	if got := recv(t, conn, time.Second); got != "READY=1" {
		t.Errorf("received %q", got)
	}
}

func TestNotifyMissingSocketIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.sock")
	sent, err := New(path).Ready()
	if sent || err == nil {
		t.Fatalf("Ready to missing socket = (%v, %v), want (false, error)", sent, err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the socket", err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	tests := []struct {
		name      string
		usec, pid string
		want      time.Duration
		wantErr   bool
	}{
		{"unset", "", "", 0, false},
		{"no pid", "30000000", "", 30 * time.Second, false},
		{"our pid", "2000000", "42", 2 * time.Second, false},
		{"other pid", "2000000", "43", 0, false},
		{"zero", "0", "", 0, true},
		{"negative", "-5", "", 0, true},
		{"garbage", "30s", "", 0, true},
		{"overflow", "99999999999999999999", "", 0, true},
		{"huge", "9223372036854775807", "", 0, true},
		{"bad pid", "1000", "x", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := watchdogInterval(tt.usec, tt.pid, 42)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrBadWatchdogEnv) {
				t.Errorf("err %v is not ErrBadWatchdogEnv", err)
			}
			if got != tt.want {
				t.Errorf("interval = %s, want %s", got, tt.want)
			}
		})
	}
	t.Run("env", func(t *testing.T) {
		t.Setenv(EnvWatchdogUsec, "1500000")
		t.Setenv(EnvWatchdogPID, fmt.Sprint(os.Getpid()))
		if got, err := WatchdogInterval(); err != nil || got != 1500*time.Millisecond {
			t.Errorf("WatchdogInterval = (%s, %v)", got, err)
		}
	})
}

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// drain discards datagrams already queued.
func drain(conn *net.UnixConn) {
	for {
		if _, ok := tryRecv(conn, 5*time.Millisecond); !ok {
			return
		}
	}
}

func TestWatchdogPingsOnlyWhileHealthy(t *testing.T) {
	conn, _ := listen(t)
	const interval = 40 * time.Millisecond // pings every 20 ms
	var healthy atomic.Bool
	var failed atomic.Int32
	healthy.Store(true)
	check := func() error {
		if healthy.Load() {
			return nil
		}
		failed.Add(1)
		return errors.New("stalled")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- NewWatchdog(FromEnv(), nil).Run(ctx, interval, check) }()

	for i := 0; i < 3; i++ {
		if got := recv(t, conn, time.Second); got != "WATCHDOG=1" {
			t.Fatalf("ping %d = %q", i, got)
		}
	}

	healthy.Store(false)
	// Run is sequential: once a check has failed, any ping from an earlier
	// healthy tick is already in the socket buffer.
	waitFor(t, func() bool { return failed.Load() > 0 })
	drain(conn)
	if msg, ok := tryRecv(conn, 8*interval); ok {
		t.Fatalf("received %q while unhealthy; want no pings", msg)
	}

	healthy.Store(true)
	if got := recv(t, conn, time.Second); got != "WATCHDOG=1" {
		t.Fatalf("after recovery got %q", got)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v after cancel, want nil", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestWatchdogWithProgress(t *testing.T) {
	conn, _ := listen(t)
	const interval = 60 * time.Millisecond
	p := NewProgress(interval, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var inferring atomic.Bool
	inferring.Store(true)
	go func() { // the pipeline: frames keep coming, inferences may hang
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				p.Frame()
				if inferring.Load() {
					p.Inference()
				}
			}
		}
	}()
	var failed atomic.Int32
	check := func() error {
		err := p.Check()
		if err != nil {
			failed.Add(1)
		}
		return err
	}
	go NewWatchdog(FromEnv(), nil).Run(ctx, interval, check)

	recv(t, conn, time.Second)
	inferring.Store(false) // model hangs, camera still delivers
	waitFor(t, func() bool { return failed.Load() > 0 })
	drain(conn)
	if msg, ok := tryRecv(conn, 4*interval); ok {
		t.Fatalf("received %q while inference stalled", msg)
	}
	if err := p.Check(); !errors.Is(err, ErrNoInferences) || errors.Is(err, ErrNoFrames) {
		t.Errorf("Check = %v, want only ErrNoInferences", err)
	}
	inferring.Store(true)
	recv(t, conn, time.Second)
}

func TestWatchdogDisabled(t *testing.T) {
	conn, _ := listen(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ok := func() error { return nil }
	for name, run := range map[string]func() error{
		"zero interval": func() error { return NewWatchdog(FromEnv(), nil).Run(ctx, 0, ok) },
		"no socket":     func() error { return NewWatchdog(New(""), nil).Run(ctx, time.Millisecond, ok) },
	} {
		start := time.Now()
		if err := run(); err != nil {
			t.Errorf("%s: Run = %v", name, err)
		}
		if time.Since(start) > 100*time.Millisecond {
			t.Errorf("%s: Run blocked for %s; a disabled watchdog returns at once", name, time.Since(start))
		}
	}
	if msg, ok := tryRecv(conn, 50*time.Millisecond); ok {
		t.Errorf("disabled watchdog sent %q", msg)
	}
}

func TestProgressCheck(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	var now atomic.Int64
	now.Store(base.UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	at := func(d time.Duration) { now.Store(base.Add(d).UnixNano()) }
	const window = 10 * time.Second

	tests := []struct {
		name        string
		steps       func(p *Progress)
		wantFrames  bool
		wantInfer   bool
		frames, inf uint64
	}{
		{"grace period at start", func(p *Progress) { at(window) }, false, false, 0, 0},
		{"nothing after window", func(p *Progress) { at(window + time.Second) }, true, true, 0, 0},
		{"both recent", func(p *Progress) { at(20 * time.Second); p.Frame(); p.Inference(); at(25 * time.Second) }, false, false, 1, 1},
		{"frames only", func(p *Progress) {
			for i := 1; i <= 30; i++ {
				at(time.Duration(i) * time.Second)
				p.Frame()
			}
		}, false, true, 30, 0},
		{"inference stale", func(p *Progress) { at(time.Second); p.Inference(); at(15 * time.Second); p.Frame() }, false, true, 1, 1},
		{"both stale", func(p *Progress) { at(time.Second); p.Frame(); p.Inference(); at(12 * time.Second) }, true, true, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at(0)
			p := NewProgress(window, clock)
			tt.steps(p)
			err := p.Check()
			if got := errors.Is(err, ErrNoFrames); got != tt.wantFrames {
				t.Errorf("ErrNoFrames = %v, want %v (err %v)", got, tt.wantFrames, err)
			}
			if got := errors.Is(err, ErrNoInferences); got != tt.wantInfer {
				t.Errorf("ErrNoInferences = %v, want %v (err %v)", got, tt.wantInfer, err)
			}
			if f, i := p.Counts(); f != tt.frames || i != tt.inf {
				t.Errorf("Counts = %d, %d, want %d, %d", f, i, tt.frames, tt.inf)
			}
		})
	}
}
