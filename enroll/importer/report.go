package importer

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// Status is a row's outcome.
type Status string

// Row outcomes.
const (
	// Enrolled: the gate enrolled the person from every photo of the row.
	Enrolled Status = "enrolled"
	// Warning: enrolled, with warnings (borderline photos, re-encoded or
	// repeated files, a forced refusal).
	Warning Status = "warning"
	// Refused: not enrolled, for Code and Reason; nothing was written.
	Refused Status = "refused"
	// Skipped: already enrolled from the same photos; nothing was sent.
	Skipped Status = "skipped"
	// Unknown: the request was sent but no reply came (interrupted, or the
	// gate did not answer in time). The gate enrols a person whole or not
	// at all; a rerun finds out which and finishes the row.
	Unknown Status = "unknown"
)

// Result is one line of the report.
type Result struct {
	Row
	Status Status `json:"status"`
	// Op is the request sent (add or replace), empty when none was.
	Op string `json:"op,omitempty"`
	// Code is the refusal's code: the gate's reply code (no_face,
	// duplicate, ...) or the importer's (missing_file, duplicate_id, ...).
	Code   string `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Photo is the photo a refusal is about, when it is about one.
	Photo string `json:"photo,omitempty"`
	// SHA256 are the photos' sha256 as sent (what the gate records).
	SHA256       []string `json:"sha256,omitempty"`
	Warnings     []string `json:"warnings,omitempty"`
	ConflictWith string   `json:"conflict_with,omitempty"`
	Templates    int      `json:"templates,omitempty"`
	// Attempts counts the requests sent for the row (busy replies and
	// unanswered requests are retried).
	Attempts int     `json:"attempts,omitempty"`
	MS       float64 `json:"ms"`
	// FromGate says the refusal came from the gate, not from the
	// importer's own checks; Earlier that it was read from the previous
	// report and not sent again.
	FromGate bool `json:"from_gate,omitempty"`
	Earlier  bool `json:"earlier,omitempty"`
}

// Summary counts the rows by outcome.
type Summary struct {
	Rows     int `json:"rows"`
	Enrolled int `json:"enrolled"`
	Warning  int `json:"warning"`
	Refused  int `json:"refused"`
	Skipped  int `json:"skipped"`
	Unknown  int `json:"unknown"`
	// NotAttempted counts the rows left when the import was interrupted.
	NotAttempted int `json:"not_attempted"`
	// Codes counts refusals by code.
	Codes map[string]int `json:"codes,omitempty"`
	// Sent counts the requests that could change the gallery (add,
	// replace); Photos the photos of those requests, PhotosEnrolled the
	// photos of the people enrolled.
	Sent           int     `json:"requests_sent"`
	Photos         int     `json:"photos_sent"`
	PhotosEnrolled int     `json:"photos_enrolled"`
	Seconds        float64 `json:"seconds"`
	// PhotosPerSecond is Photos over Seconds: the gate's enrollment rate
	// as the importer saw it.
	PhotosPerSecond float64 `json:"photos_per_second"`
	Interrupted     bool    `json:"interrupted,omitempty"`
}

// NothingToDo reports whether the run sent nothing that could change the
// gallery: every person was already enrolled from the same photos, or
// refused without being sent.
func (s Summary) NothingToDo() bool { return s.Sent == 0 && s.Unknown == 0 && s.NotAttempted == 0 }

func (s *Summary) add(r Result) {
	switch r.Status {
	case Enrolled:
		s.Enrolled++
	case Warning:
		s.Warning++
	case Refused:
		s.Refused++
		if s.Codes == nil {
			s.Codes = map[string]int{}
		}
		s.Codes[r.Code]++
	case Skipped:
		s.Skipped++
	case Unknown:
		s.Unknown++
	}
	if r.Status == Enrolled || r.Status == Warning {
		s.PhotosEnrolled += len(r.SHA256)
	}
}

// String is the summary in one paragraph.
func (s Summary) String() string {
	var b strings.Builder
	if s.NothingToDo() {
		fmt.Fprintf(&b, "nothing to do: %d rows, %d already enrolled from the same photos", s.Rows, s.Skipped)
		if s.Refused > 0 {
			fmt.Fprintf(&b, ", %d refused without sending (%s; see the report)", s.Refused, codesText(s.Codes))
		}
		return b.String()
	}
	fmt.Fprintf(&b, "%d rows: %d enrolled, %d enrolled with warnings, %d refused", s.Rows, s.Enrolled, s.Warning, s.Refused)
	if s.Refused > 0 {
		fmt.Fprintf(&b, " (%s)", codesText(s.Codes))
	}
	fmt.Fprintf(&b, ", %d skipped (already enrolled)", s.Skipped)
	if s.Unknown > 0 {
		fmt.Fprintf(&b, ", %d unanswered", s.Unknown)
	}
	if s.NotAttempted > 0 {
		fmt.Fprintf(&b, ", %d not attempted", s.NotAttempted)
	}
	fmt.Fprintf(&b, "; %d requests, %d photos in %.1f s (%.2f photos/s)", s.Sent, s.Photos, s.Seconds, s.PhotosPerSecond)
	if s.Interrupted || s.Unknown > 0 {
		b.WriteString(". Interrupted or unanswered rows are finished by running the same import again")
	}
	return b.String()
}

func codesText(codes map[string]int) string {
	keys := make([]string, 0, len(codes))
	for k := range codes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, codes[k])
	}
	return strings.Join(parts, ", ")
}

// reportWriter writes JSON lines, one per row as it finishes, flushed
// each time so that an interrupted import leaves a complete record of
// what it did.
type reportWriter struct {
	w   *bufio.Writer
	enc *json.Encoder
}

func newReportWriter(w io.Writer) *reportWriter {
	if w == nil {
		w = io.Discard
	}
	bw := bufio.NewWriter(w)
	return &reportWriter{w: bw, enc: json.NewEncoder(bw)}
}

func (r *reportWriter) write(v any) error {
	if err := r.enc.Encode(v); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := r.w.Flush(); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// summaryLine is the report's last line.
type summaryLine struct {
	Summary Summary   `json:"summary"`
	Time    time.Time `json:"time"`
}

// Earlier holds the gate's refusals of a previous run, by person: a row
// refused by the gate with the same photos is not sent again (the gate
// would judge the same photos the same way) unless the caller asks for a
// retry.
type Earlier map[string]Result

// ReadEarlier reads a previous report; a missing file is an empty one.
// Lines that are not rows (the summary) are ignored.
func ReadEarlier(path string) (Earlier, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return Earlier{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("previous report: %w", err)
	}
	defer f.Close()
	out := Earlier{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for n := 1; sc.Scan(); n++ {
		var r Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("previous report %s:%d: %w", path, n, err)
		}
		if r.Status == Refused && r.FromGate && r.ID != "" && len(r.SHA256) > 0 {
			out[r.ID] = r
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("previous report %s: %w", path, err)
	}
	return out, nil
}
