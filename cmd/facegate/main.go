package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/facegate/facegate/daemon"
)

// version is set at link time: -ldflags "-X main.version=v1.2.3".
var version = ""

// errUsage is returned for a bad command line; main exits 2 on it.
var errUsage = errors.New("usage")

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout io.Writer) error
}

func commands() []command {
	return []command{
		{"run", "run the gate daemon (configured from FACEGATE_* variables)", cmdRun},
		{"enroll", "send a signed enrollment request to a gate over MQTT and print the reply", cmdEnroll},
		{"watch", "print a gate's events as they arrive", cmdWatch},
		{"version", "print the version and the TensorFlow library in use", cmdVersion},
		{"config", "print the effective configuration from FACEGATE_* variables, validated, secrets redacted", cmdConfig},
		{"detect", "print the faces found in images as JSON lines (boxes, scores, keypoints)", cmdDetect},
		{"eval", "measure verification (-pairs) or identification (-identify) accuracy on labelled photos; -calibrate writes thresholds", cmdEval},
		{"pad-eval", "measure presentation-attack detection on a labelled folder (bona_fide/, attack/<species>/): APCER per species, BPCER, ACER, DET plot", cmdPADEval},
		{"bench", "measure embedding speed (vs Python TensorFlow with -python), per-face end to end (-e2e), 1:N matching (-matching), memory (-memory), tracking (-tracking)", cmdBench},
		{"gallery", "check or re-encrypt the gallery database under the current key (the daemon must be stopped)", cmdGallery},
		{"models", "load and check every model under a folder (default $FACEGATE_MODELS_DIR or build/models)", cmdModels},
		{"site", "replication between gates: status, init, serve (a NATS member), keygen (docs/site.md)", cmdSite},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		// One plain line per problem, naming the variable or file and the
		// remedy: what a person at the console or in journalctl needs.
		var se *daemon.StartupError
		if errors.As(err, &se) {
			fmt.Fprintf(os.Stderr, "facegate: cannot start (%d problem(s)):\n", len(se.Problems))
			for _, l := range se.Lines() {
				fmt.Fprintln(os.Stderr, "facegate: "+l)
			}
		} else {
			fmt.Fprintln(os.Stderr, "facegate: "+err.Error())
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	usage := func() {
		fmt.Fprintln(stderr, "usage: facegate COMMAND [flags]\n\ncommands:")
		for _, c := range commands() {
			fmt.Fprintf(stderr, "  %-10s %s\n", c.name, c.summary)
		}
	}
	if len(args) == 0 {
		usage()
		return errUsage
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout)
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
	}
	fmt.Fprintf(stderr, "facegate: unknown command %q\n", args[0])
	usage()
	return errUsage
}

// Version reports the build's version: the linker flag, else the module
// version, else the VCS revision.
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "devel-" + s.Value[:12]
			}
		}
	}
	return "devel"
}
