package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/facegate/facegate/daemon"
)

// cmdRun is the daemon: configuration from the environment, validated
// before anything opens; runs until SIGINT/SIGTERM.
func cmdRun(ctx context.Context, args []string, _ io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: facegate run\n\nRuns the gate daemon. Every setting comes from FACEGATE_* environment variables: `facegate config` lists them.")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	cfg, err := daemon.LoadConfig()
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
	log.Info("facegate starting", "version", Version(), "device_id", cfg.DeviceID)
	s, err := daemon.NewService(cfg, Version(), log)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Run(ctx)
}
