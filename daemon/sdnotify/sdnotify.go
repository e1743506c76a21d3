package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Environment variables set by systemd for the service's main process.
const (
	EnvNotifySocket  = "NOTIFY_SOCKET"
	EnvWatchdogUsec  = "WATCHDOG_USEC"
	EnvWatchdogPID   = "WATCHDOG_PID"
	stateReady       = "READY=1"
	stateStopping    = "STOPPING=1"
	stateReloading   = "RELOADING=1"
	stateWatchdog    = "WATCHDOG=1"
	maxStatusLength  = 1024
	writeDeadline    = time.Second
	socketTypeUnixgm = "unixgram"
)

// ErrBadWatchdogEnv reports a $WATCHDOG_USEC or $WATCHDOG_PID that is not a
// positive integer.
var ErrBadWatchdogEnv = errors.New("sdnotify: invalid watchdog environment")

// Notifier sends state changes to the service manager. The zero value and a
// Notifier with an empty socket are valid and do nothing (not under systemd).
// A Notifier is safe for concurrent use.
type Notifier struct {
	socket string
}

// New returns a Notifier that sends to the given socket path ("@name" for an
// abstract socket). An empty path yields a Notifier that does nothing.
func New(socket string) *Notifier {
	return &Notifier{socket: socket}
}

// FromEnv returns a Notifier for $NOTIFY_SOCKET, read now.
func FromEnv() *Notifier {
	return New(os.Getenv(EnvNotifySocket))
}

// Enabled reports whether a notification socket is configured.
func (n *Notifier) Enabled() bool {
	return n != nil && n.socket != ""
}

// Notify sends one state string (newline separated assignments such as
// "READY=1\nSTATUS=serving"). It returns (false, nil) when no socket is
// configured, (false, err) when sending failed and (true, nil) when the
// datagram was delivered to the socket.
func (n *Notifier) Notify(state string) (bool, error) {
	if !n.Enabled() {
		return false, nil
	}
	addr := &net.UnixAddr{Name: n.socket, Net: socketTypeUnixgm}
	// Go maps a leading '@' to the Linux abstract namespace by itself.
	conn, err := net.DialUnix(socketTypeUnixgm, nil, addr)
	if err != nil {
		return false, fmt.Errorf("sdnotify: dial %s: %w", n.socket, err)
	}
	defer conn.Close()
	if err := conn.SetWriteDeadline(time.Now().Add(writeDeadline)); err != nil {
		return false, fmt.Errorf("sdnotify: set deadline on %s: %w", n.socket, err)
	}
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sdnotify: send %q to %s: %w", firstLine(state), n.socket, err)
	}
	return true, nil
}

// Ready tells systemd that start-up finished. Send it only once the model is
// loaded, the camera delivers frames and MQTT is connected or retrying.
func (n *Notifier) Ready() (bool, error) { return n.Notify(stateReady) }

// Stopping tells systemd that shutdown began.
func (n *Notifier) Stopping() (bool, error) { return n.Notify(stateStopping) }

// Reloading tells systemd that the configuration is being reloaded; send
// Ready again when done.
func (n *Notifier) Reloading() (bool, error) { return n.Notify(stateReloading) }

// Watchdog sends one keep-alive. Prefer a Watchdog runner, which pings only
// while the pipeline is healthy.
func (n *Notifier) Watchdog() (bool, error) { return n.Notify(stateWatchdog) }

// Status sets the free-form status line shown by systemctl status. Newlines
// are replaced by spaces (they would start a new assignment) and the text is
// cut at 1024 bytes.
func (n *Notifier) Status(status string) (bool, error) {
	status = strings.NewReplacer("\n", " ", "\r", " ").Replace(status)
	if len(status) > maxStatusLength {
		status = status[:maxStatusLength]
	}
	return n.Notify("STATUS=" + status)
}

// WatchdogInterval returns the watchdog interval systemd expects keep-alives
// within, from $WATCHDOG_USEC and $WATCHDOG_PID read now. It returns
// (0, nil) when the watchdog is not enabled for this process (variables unset,
// or $WATCHDOG_PID names another process), and an error wrapping
// ErrBadWatchdogEnv when the variables are malformed.
func WatchdogInterval() (time.Duration, error) {
	return watchdogInterval(os.Getenv(EnvWatchdogUsec), os.Getenv(EnvWatchdogPID), os.Getpid())
}

func watchdogInterval(usecStr, pidStr string, pid int) (time.Duration, error) {
	if usecStr == "" {
		return 0, nil
	}
	usec, err := strconv.ParseInt(usecStr, 10, 64)
	if err != nil || usec <= 0 {
		return 0, fmt.Errorf("%w: %s=%q is not a positive integer", ErrBadWatchdogEnv, EnvWatchdogUsec, usecStr)
	}
	if usec > int64(1<<63-1)/int64(time.Microsecond) {
		return 0, fmt.Errorf("%w: %s=%q is too large", ErrBadWatchdogEnv, EnvWatchdogUsec, usecStr)
	}
	if pidStr != "" {
		p, err := strconv.Atoi(pidStr)
		if err != nil || p <= 0 {
			return 0, fmt.Errorf("%w: %s=%q is not a positive integer", ErrBadWatchdogEnv, EnvWatchdogPID, pidStr)
		}
		if p != pid {
			return 0, nil
		}
	}
	return time.Duration(usec) * time.Microsecond, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + "..."
	}
	return s
}
