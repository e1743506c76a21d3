package sdnotify

import (
	"context"
	"log/slog"
	"time"
)

// Watchdog sends WATCHDOG=1 at half the systemd watchdog interval, but only
// while a health check passes (the kubelet watchdog pattern). When the check
// fails the pings stop, and systemd restarts the service once the interval
// runs out; pings resume as soon as the check passes again.
type Watchdog struct {
	notifier *Notifier
	logger   *slog.Logger
}

// NewWatchdog returns a runner sending through n and logging state changes
// (healthy to unhealthy and back, failed sends) to logger; a nil logger
// discards them.
func NewWatchdog(n *Notifier, logger *slog.Logger) *Watchdog {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Watchdog{notifier: n, logger: logger.With("component", "watchdog")}
}

// Run pings every interval/2 while healthy() returns nil, until ctx is
// done; it then returns nil. healthy is called once per tick, from Run's
// goroutine only. An interval <= 0 or a Notifier without socket means the
// watchdog is off: Run returns nil at once. Send errors are logged, not
// returned: a missed ping is systemd's to act on, not a reason to stop the
// daemon.
func (w *Watchdog) Run(ctx context.Context, interval time.Duration, healthy func() error) error {
	if interval <= 0 || !w.notifier.Enabled() {
		w.logger.Debug("systemd watchdog disabled", "interval", interval, "socket", w.notifier.Enabled())
		return nil
	}
	period := interval / 2
	if period <= 0 {
		period = interval
	}
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	w.logger.Info("systemd watchdog enabled", "interval", interval, "ping_every", period)
	unhealthy := false
	sendFailing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		if err := healthy(); err != nil {
			if !unhealthy {
				w.logger.Warn("pipeline unhealthy; withholding watchdog pings", "err", err)
				unhealthy = true
			}
			continue
		}
		if unhealthy {
			w.logger.Info("pipeline healthy again; resuming watchdog pings")
			unhealthy = false
		}
		if _, err := w.notifier.Watchdog(); err != nil {
			if !sendFailing {
				w.logger.Warn("watchdog ping failed", "err", err)
				sendFailing = true
			}
			continue
		}
		sendFailing = false
	}
}
