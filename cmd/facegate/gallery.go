package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/facegate/facegate/daemon"
	"github.com/facegate/facegate/enroll/store"
)

// cmdGallery checks the gallery database or re-encrypts it under the first
// key of FACEGATE_GALLERY_KEY, with the daemon's own configuration.
func cmdGallery(_ context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("gallery", flag.ContinueOnError)
	wait := fs.Duration("wait", 2*time.Second, "how long to wait for the database lock (held by a running daemon)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: facegate gallery [flags] check|rekey

  check   verify every record decrypts and decodes; print people, templates,
          models and records per key id as JSON (read-only)
  rekey   re-encrypt every record under the first key of
          FACEGATE_GALLERY_KEY, then check; afterwards the older keys in
          the file can be removed and destroyed (docs/security.md)

The gallery is $FACEGATE_STATE_DIR/gallery.db; the same FACEGATE_*
environment as the daemon's is read. Stop the daemon first: it holds the
database's lock.

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() != 1 || (fs.Arg(0) != "check" && fs.Arg(0) != "rekey") {
		fs.Usage()
		return errUsage
	}
	cfg, err := daemon.LoadConfig()
	if err != nil {
		return err
	}
	keys, err := daemon.GalleryKeys(cfg.GalleryKey)
	if err != nil {
		return err
	}
	path := daemon.GalleryPath(cfg.StateDir)
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("gallery: %w", err)
	}
	st, err := store.Open(path, keys[0], store.Options{OldKeys: keys[1:], LockTimeout: *wait, ReadOnly: fs.Arg(0) == "check"})
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return fmt.Errorf("%w: is the daemon running? stop it first", err)
		}
		return err
	}
	defer st.Close()
	out := struct {
		Rekeyed   *int           `json:"rekeyed,omitempty"`
		People    int            `json:"people"`
		Templates int            `json:"templates"`
		Models    map[string]int `json:"models"`
		KeyIDs    map[string]int `json:"records_per_key_id"`
		Current   string         `json:"current_key_id"`
	}{Current: keys[0].ID, Models: map[string]int{}}
	if fs.Arg(0) == "rekey" {
		n, err := st.Rekey()
		if err != nil {
			return err
		}
		out.Rekeyed = &n
	}
	r, err := st.Check()
	if err != nil {
		return err
	}
	out.People, out.Templates, out.KeyIDs = r.People, r.Templates, r.KeyIDs
	for m, n := range r.Models {
		out.Models[m.String()] = n
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, string(b))
	return nil
}
