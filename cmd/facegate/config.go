package main

import (
	"context"
	"errors"
	"flag"
	"io"

	"github.com/facegate/facegate/daemon"
)

// cmdConfig prints the effective configuration (environment and defaults),
// validated, with secrets redacted, then runs the start-up checks `run`
// runs (daemon.Preflight: files exist, modes, parse, models calibrated,
// gallery not locked); it exits non-zero naming every problem.
func cmdConfig(_ context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
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
	if err := cfg.Print(stdout); err != nil {
		return err
	}
	return daemon.Preflight(cfg)
}
