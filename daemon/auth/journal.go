package auth

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// journal is the durable record of accepted nonces: one line per nonce,
// "<expiry unix seconds> <key id> <nonce>\n", appended and fsync'd before
// the request is accepted. Key ids and nonces contain no spaces or
// newlines (validate), so the lines are unambiguous. Expired lines are
// dropped when the file is opened and when it is compacted.
type journal struct {
	path  string
	f     *os.File
	lines int // lines in the file
}

// maxJournalLine bounds a line: 11 digits, a key id, a nonce, separators.
const maxJournalLine = 11 + 1 + 64 + 1 + MaxNonceLen + 1

// openJournal reads the live entries of path (creating it, mode 0600) and
// rewrites it with those only. A torn last line (a crash mid-append) is
// dropped: its request was never accepted, as the append had not returned.
func openJournal(path string, now time.Time) (*journal, []nonceEntry, error) {
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, nil, fmt.Errorf("nonce journal: %w", err)
	}
	var live []nonceEntry
	// Only complete lines count: a line without its newline was torn by a
	// crash before its fsync returned.
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		b = nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) != 3 {
			continue
		}
		exp, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || !validKeyID(fields[1]) || len(fields[2]) < MinNonceLen || len(fields[2]) > MaxNonceLen || !allBytes(fields[2], isNonceByte) {
			continue
		}
		if e := time.Unix(exp, 0); e.After(now) {
			live = append(live, nonceEntry{nonce: fields[1] + "\x00" + fields[2], expires: e})
		}
	}
	j := &journal{path: path}
	if err := j.rewrite(live); err != nil {
		return nil, nil, err
	}
	return j, live, nil
}

func formatEntry(b []byte, e nonceEntry) []byte {
	key, nonce, _ := strings.Cut(e.nonce, "\x00")
	b = strconv.AppendInt(b, e.expires.Unix(), 10)
	b = append(b, ' ')
	b = append(b, key...)
	b = append(b, ' ')
	b = append(b, nonce...)
	return append(b, '\n')
}

// rewrite replaces the file with entries, atomically (temporary file,
// fsync, rename, fsync of the folder), and reopens it for appending.
func (j *journal) rewrite(entries []nonceEntry) error {
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
	dir := filepath.Dir(j.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("nonce journal: %w", err)
	}
	var buf []byte
	for _, e := range entries {
		buf = formatEntry(buf, e)
	}
	tmp := j.path + ".tmp"
	if err := writeSync(tmp, buf); err != nil {
		return fmt.Errorf("nonce journal: %w", err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		return fmt.Errorf("nonce journal: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("nonce journal: %w", err)
	}
	j.f, j.lines = f, len(entries)
	return nil
}

func writeSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// append records e durably. When the file holds many more lines than live
// entries it is compacted to live (plus e) instead.
func (j *journal) append(e nonceEntry, live []nonceEntry) error {
	if j.f == nil {
		return fmt.Errorf("nonce journal %s is closed", j.path)
	}
	if j.lines > 2*len(live)+1024 {
		all := append(append(make([]nonceEntry, 0, len(live)+1), live...), e)
		return j.rewrite(all)
	}
	line := formatEntry(make([]byte, 0, maxJournalLine), e)
	if _, err := j.f.Write(line); err != nil {
		return fmt.Errorf("nonce journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("nonce journal: %w", err)
	}
	j.lines++
	return nil
}

func (j *journal) close() error {
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}
