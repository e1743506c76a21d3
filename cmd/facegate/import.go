package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/facegate/facegate/enroll/importer"
)

// cmdImport is `facegate enroll import`: bulk enrollment from a folder tree
// or a CSV through a running gate (package enroll/importer). base holds
// the client flags given before the word import.
func cmdImport(ctx context.Context, args []string, stdout io.Writer, base clientFlags) error {
	fs := flag.NewFlagSet("enroll import", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs)
	cf = base
	csvFile := fs.String("csv", "", "CSV of people: id,name,photo[,photo...] per line (photos relative to the CSV's folder)")
	dir := fs.String("dir", "", "folder tree of people: DIR/<id>/<photos> (the name is the id, underscores as spaces)")
	report := fs.String("report", "import-report.jsonl", "per-row report (JSON lines, rewritten; the previous one is read first)")
	replace := fs.Bool("replace", false, "overwrite people enrolled from other photos (else refused as subject_exists)")
	force := fs.Bool("force", false, "enrol past the gate's duplicate and conflict refusals (audited on the gate)")
	retry := fs.Bool("retry-refused", false, "send again the rows the gate refused on the previous run with the same photos")
	conc := fs.Int("concurrency", 2, "requests in flight (1-16)")
	maxBytes := fs.Int("max-image-bytes", importer.DefaultPhotoLimits.MaxBytes, "the gate's FACEGATE_MQTT_LIMITS_MAXIMAGEBYTES: larger photos are scaled down and re-encoded as JPEG")
	maxPixels := fs.Int("max-pixels", importer.DefaultPhotoLimits.MaxPixels, "the gate's FACEGATE_MQTT_LIMITS_MAXPIXELS: larger photos are scaled down")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: facegate enroll import (-csv FILE | -dir DIR) [flags]

Enrols every person of a CSV or a folder tree into a running gate, one
signed add request per person with all of their photos (a person is
enrolled from all of their photos or not at all). Rows that cannot be
imported (missing or corrupt files, more than 5 photos, an id given twice,
no face, a duplicate of someone enrolled) are reported and skipped. Run
again, it skips people enrolled from the same photos and rows the gate
refused before, and finishes an interrupted import. Exits 1 when a row is
not enrolled. See docs/operations.md.

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
	if (*csvFile == "") == (*dir == "") || fs.NArg() > 0 || *conc < 1 || *conc > 16 {
		fs.Usage()
		return errUsage
	}
	var rows []importer.Row
	var err error
	if *csvFile != "" {
		rows, err = importer.ReadCSV(*csvFile)
	} else {
		rows, err = importer.ReadDir(*dir)
	}
	if err != nil {
		return err
	}
	importer.Validate(rows)
	key, err := signingKey(cf.keys)
	if err != nil {
		return err
	}
	earlier, err := importer.ReadEarlier(*report)
	if err != nil {
		return fmt.Errorf("%w (move it away to start afresh)", err)
	}
	if err := os.MkdirAll(filepath.Dir(*report), 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	out, err := os.Create(*report)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	defer out.Close()

	g := importer.NewMQTTGate(key, cf.prefix, cf.device, cf.timeout, slog.Default())
	cl, err := cf.connect("facegate-import", g.OnConnect)
	if err != nil {
		return err
	}
	defer cl.Disconnect(250)
	g.Attach(cl)
	slog.Info("importing", "rows", len(rows), "device", cf.device, "report", *report, "concurrency", *conc)
	sum, err := importer.Run(ctx, g, rows, importer.Options{
		Replace: *replace, Force: *force, RetryRefused: *retry, Concurrency: *conc,
		Limits:  importer.PhotoLimits{MaxBytes: *maxBytes, MaxPixels: *maxPixels},
		Earlier: earlier, Report: out, Progress: os.Stderr, Drain: cf.timeout, Log: slog.Default(),
	})
	if cerr := out.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("report: %w", cerr)
	}
	fmt.Fprintln(stdout, sum)
	if err != nil {
		return err
	}
	switch notDone := sum.Refused + sum.Unknown + sum.NotAttempted; {
	case sum.Interrupted:
		return fmt.Errorf("interrupted: %d rows not done; run the same import again to finish (report %s)", notDone, *report)
	case notDone > 0:
		return fmt.Errorf("%d of %d rows not enrolled: see %s", notDone, sum.Rows, *report)
	}
	return nil
}
