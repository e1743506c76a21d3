package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/facegate/facegate/daemon"
	"github.com/facegate/facegate/daemon/auth"
	"github.com/facegate/facegate/site"
)

// siteEnv is what the site commands read from FACEGATE_* variables.
type siteEnv struct {
	StateDir string `envconfig:"STATE_DIR" default:"/var/lib/facegate"`
	daemon.SiteConfig
}

// cmdSite runs the site subcommands (docs/site.md, Operations).
func cmdSite(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("site", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "status: print JSON")
	gate := fs.String("gate", "", "keygen: the gate id (its FACEGATE_DEVICE_ID)")
	operator := fs.String("operator", "", "keygen: an operator's key id (instead of -gate): an Ed25519 operator key")
	out := fs.String("out", "", "keygen: write the private key to this file (mode 0600, never overwritten)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: facegate site [flags] status|init|serve|keygen

  status   the gallery stream's last sequence and each gate's applied sequence and lag
  init     create or update the site's streams (an operator's NATS user; FACEGATE_SITE_REPLICAS)
  serve    run a NATS cluster member (FACEGATE_SITE_SERVER_*) until stopped
  keygen   -gate ID: make a gate's Ed25519 key: the seed into -out, its line for
           FACEGATE_SITE_GATE_KEYS on stdout
           -operator ID: make an operator's Ed25519 key: the private key ring
           line into -out (for facegate enroll -keys), its public line
           ed25519:ID:<key> for every gate's FACEGATE_ENROLL_KEYS on stdout

The same FACEGATE_SITE_* environment as the daemon's is read.

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 {
		fs.Usage()
		return errUsage
	}
	// Flags may also follow the subcommand (facegate site keygen -gate g1 -out f).
	cmd := fs.Arg(0)
	if err := fs.Parse(fs.Args()[1:]); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	var env siteEnv
	if err := envconfig.Process(daemon.EnvPrefix, &env); err != nil {
		return fmt.Errorf("%w: %v", daemon.ErrConfig, err)
	}
	switch cmd {
	case "keygen":
		if *operator != "" {
			if *gate != "" {
				return fmt.Errorf("%w: keygen takes -gate or -operator, not both", errUsage)
			}
			return operatorKeygen(*operator, *out, stdout)
		}
		return siteKeygen(*gate, *out, stdout)
	case "serve":
		srv, err := daemon.StartSiteServer(env.SiteServerConfig, env.StateDir, slog.Default())
		if err != nil {
			return err
		}
		slog.Info("nats member serving", "name", env.ServerName, "clients", srv.ClientURL(), "cluster", env.ServerCluster)
		<-ctx.Done()
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil
	case "status", "init":
	default:
		fs.Usage()
		return errUsage
	}
	nc, js, err := daemon.ConnectSite(env.SiteConfig, "facegate-site-cli")
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if cmd == "init" {
		if err := site.EnsureStreams(ctx, js, site.StreamOptions{Replicas: env.SiteReplicas}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "streams %s and %s and bucket %s ready (%d replicas)\n", site.GalleryStream, site.EventsStream, site.StatusBucket, env.SiteReplicas)
		return nil
	}
	st, err := site.ReadStatus(ctx, js)
	if err != nil {
		return err
	}
	if *asJSON {
		type gateJSON struct {
			site.GateStatus
			Lag uint64 `json:"lag"`
		}
		gates := make([]gateJSON, len(st.Gates))
		for i, g := range st.Gates {
			gates[i] = gateJSON{g, g.Lag}
		}
		return json.NewEncoder(stdout).Encode(map[string]any{"last_seq": st.LastSeq, "messages": st.Messages, "bytes": st.Bytes, "gates": gates})
	}
	fmt.Fprintf(stdout, "gallery stream: last sequence %d, %d changes, %d bytes\n", st.LastSeq, st.Messages, st.Bytes)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GATE\tAPPLIED\tLAG\tREPORTED")
	for _, g := range st.Gates {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s ago\n", g.Gate, g.Applied, g.Lag, time.Since(g.Updated).Round(time.Second))
	}
	return tw.Flush()
}

// operatorKeygen writes a new operator Ed25519 private key (a key ring
// line, mode 0600, never overwriting a file) and prints the public line
// the gates list in FACEGATE_ENROLL_KEYS.
func operatorKeygen(id, out string, stdout io.Writer) error {
	if out == "" {
		return fmt.Errorf("%w: keygen -operator needs -out", errUsage)
	}
	k, err := auth.GenerateEd25519(id)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("keygen: %s exists; an operator's key is never overwritten", out)
		}
		return fmt.Errorf("keygen: %w", err)
	}
	_, err = fmt.Fprintf(f, "# facegate operator key %s: keep it with the operator, never on a gate\n%s\n", id, k.PrivateLine())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	_, err = fmt.Fprintln(stdout, k.PublicLine())
	return err
}

// siteKeygen writes a new gate's Ed25519 seed and prints its public line.
func siteKeygen(gate, out string, stdout io.Writer) error {
	if gate == "" || out == "" {
		return fmt.Errorf("%w: keygen needs -gate and -out", errUsage)
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return err
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("keygen: %s exists; a gate's key is never overwritten", out)
		}
		return fmt.Errorf("keygen: %w", err)
	}
	_, err = fmt.Fprintln(f, base64.StdEncoding.EncodeToString(seed))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	_, err = fmt.Fprintf(stdout, "%s %s\n", gate, base64.StdEncoding.EncodeToString(pub))
	return err
}
