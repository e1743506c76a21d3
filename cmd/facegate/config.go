package main

import (
	"context"
	"errors"
	"flag"
	"io"

	"github.com/facegate/facegate/daemon"
)

// cmdConfig prints the effective configuration (environment and defaults),
// validated, with secrets redacted; it exits non-zero naming every bad
// variable.
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
	return cfg.Print(stdout)
}
