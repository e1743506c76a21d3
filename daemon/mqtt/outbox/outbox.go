package outbox

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// ErrClosed is returned after Close.
var ErrClosed = errors.New("outbox: closed")

// ErrTooLarge is returned by Append for a record larger than MaxRecord.
var ErrTooLarge = errors.New("outbox: record too large")

const (
	headerLen  = 16 // u32 length, u32 crc32c(seq||payload), u64 seq
	segSuffix  = ".seg"
	stateFile  = "state"
	stateLen   = 8 + 8 + 4
	defaultMax = 64 << 20
	// MaxRecord is the largest payload Append accepts.
	MaxRecord = 4 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Options configure an outbox. Zero values take the defaults.
type Options struct {
	// MaxBytes bounds the bytes of undelivered records on disk (default
	// 64 MiB). When an Append would exceed it, the oldest segment is
	// dropped.
	MaxBytes int64
	// SegmentBytes is the size at which a new segment starts (default
	// MaxBytes/16, at least 64 KiB).
	SegmentBytes int64
	// NoSync skips fsync (tests and benchmarks only).
	NoSync bool
	Logger *slog.Logger
}

// Record is one queued payload.
type Record struct {
	Seq     uint64
	Payload []byte
}

type entry struct {
	seq uint64
	off int64
	n   int
}

type segment struct {
	first   uint64
	path    string
	size    int64
	entries []entry
}

// Outbox is safe for concurrent use: any number of appenders and one
// consumer calling Next/Ack.
type Outbox struct {
	dir  string
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	cond    chan struct{} // closed and replaced when a record is appended
	segs    []*segment
	w       *os.File // tail segment, append mode
	acked   uint64
	nextSeq uint64
	dropped uint64
	bytes   int64 // bytes of records not yet acked (approximate: whole segments)
	closed  bool
}

// Open opens or creates the outbox in dir (mode 0700), recovering from a
// torn tail.
func Open(dir string, opts Options) (*Outbox, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = defaultMax
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = max(opts.MaxBytes/16, min(64<<10, opts.MaxBytes/2))
	}
	opts.SegmentBytes = min(opts.SegmentBytes, max(opts.MaxBytes/2, 1))
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("outbox: create %s: %w", dir, err)
	}
	o := &Outbox{dir: dir, opts: opts, log: opts.Logger, cond: make(chan struct{})}
	if err := o.readState(); err != nil {
		return nil, err
	}
	names, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		return nil, fmt.Errorf("outbox: list %s: %w", dir, err)
	}
	sort.Strings(names) // fixed-width hex names sort by first seq
	last := o.acked
	for _, name := range names {
		first, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(name), segSuffix), 16, 64)
		if err != nil {
			o.log.Warn("outbox: ignoring stray file", "path", name)
			continue
		}
		s := &segment{first: first, path: name}
		if err := o.scan(s); err != nil {
			return nil, err
		}
		if n := len(s.entries); n > 0 && s.entries[n-1].seq > last {
			last = s.entries[n-1].seq
		}
		// Drop acknowledged entries from the in-memory index.
		i := sort.Search(len(s.entries), func(i int) bool { return s.entries[i].seq > o.acked })
		s.entries = s.entries[i:]
		if len(s.entries) == 0 && name != names[len(names)-1] {
			if err := os.Remove(name); err != nil {
				return nil, fmt.Errorf("outbox: remove delivered segment: %w", err)
			}
			continue
		}
		o.segs = append(o.segs, s)
		o.bytes += s.size
	}
	o.nextSeq = last + 1
	return o, nil
}

// scan reads a segment's records, truncating at the first bad one.
func (o *Outbox) scan(s *segment) error {
	f, err := os.OpenFile(s.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("outbox: open segment: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("outbox: stat segment: %w", err)
	}
	var off int64
	hdr := make([]byte, headerLen)
	prev := uint64(0)
	for off < st.Size() {
		bad := ""
		if _, err := f.ReadAt(hdr, off); err != nil {
			bad = "short header"
		} else {
			n := int64(binary.LittleEndian.Uint32(hdr[0:]))
			sum := binary.LittleEndian.Uint32(hdr[4:])
			seq := binary.LittleEndian.Uint64(hdr[8:])
			switch {
			case n > MaxRecord || off+headerLen+n > st.Size():
				bad = "short or oversized record"
			case seq <= prev || seq < s.first:
				bad = "sequence out of order"
			default:
				buf := make([]byte, n)
				if _, err := f.ReadAt(buf, off+headerLen); err != nil {
					bad = "unreadable record"
				} else if crc(seq, buf) != sum {
					bad = "CRC mismatch"
				} else {
					s.entries = append(s.entries, entry{seq: seq, off: off + headerLen, n: int(n)})
					prev = seq
					off += headerLen + n
					continue
				}
			}
		}
		o.log.Warn("outbox: truncating damaged segment (torn write after a crash?)",
			"segment", filepath.Base(s.path), "offset", off, "lost_bytes", st.Size()-off, "reason", bad)
		if err := f.Truncate(off); err != nil {
			return fmt.Errorf("outbox: truncate %s: %w", s.path, err)
		}
		if !o.opts.NoSync {
			if err := f.Sync(); err != nil {
				return fmt.Errorf("outbox: sync %s: %w", s.path, err)
			}
		}
		break
	}
	s.size = off
	return nil
}

func crc(seq uint64, p []byte) uint32 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], seq)
	c := crc32.Update(0, crcTable, b[:])
	return crc32.Update(c, crcTable, p)
}

func (o *Outbox) readState() error {
	b, err := os.ReadFile(filepath.Join(o.dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("outbox: read state: %w", err)
	}
	if len(b) != stateLen || crc32.Checksum(b[:16], crcTable) != binary.LittleEndian.Uint32(b[16:]) {
		// Losing the ack position only causes redelivery (duplicates).
		o.log.Warn("outbox: state file damaged; undelivered and delivered records will be resent")
		return nil
	}
	o.acked = binary.LittleEndian.Uint64(b[0:])
	o.dropped = binary.LittleEndian.Uint64(b[8:])
	return nil
}

// writeState persists acked and dropped (write temp + rename). It is not
// fsync'd: losing it in a crash only causes redelivery.
func (o *Outbox) writeState() error {
	var b [stateLen]byte
	binary.LittleEndian.PutUint64(b[0:], o.acked)
	binary.LittleEndian.PutUint64(b[8:], o.dropped)
	binary.LittleEndian.PutUint32(b[16:], crc32.Checksum(b[:16], crcTable))
	tmp := filepath.Join(o.dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b[:], 0o600); err != nil {
		return fmt.Errorf("outbox: write state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(o.dir, stateFile)); err != nil {
		return fmt.Errorf("outbox: write state: %w", err)
	}
	return nil
}

// Append assigns the next sequence number, builds the payload with it
// (build is called with the lock held and must not call the outbox), and
// durably appends it.
func (o *Outbox) Append(build func(seq uint64) ([]byte, error)) (uint64, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return 0, ErrClosed
	}
	seq := o.nextSeq
	p, err := build(seq)
	if err != nil {
		return 0, fmt.Errorf("outbox: build record %d: %w", seq, err)
	}
	if len(p) > MaxRecord {
		return 0, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(p))
	}
	n := int64(headerLen + len(p))
	if n > o.opts.MaxBytes/2 {
		return 0, fmt.Errorf("%w: %d bytes, half the outbox is %d", ErrTooLarge, n, o.opts.MaxBytes/2)
	}
	if err := o.makeRoom(n); err != nil {
		return 0, err
	}
	tail := o.tail()
	switch {
	case tail == nil || tail.size > 0 && tail.size+n > o.opts.SegmentBytes:
		if err := o.newSegment(seq); err != nil {
			return 0, err
		}
		tail = o.tail()
	case o.w == nil:
		f, err := os.OpenFile(tail.path, os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return 0, fmt.Errorf("outbox: reopen segment: %w", err)
		}
		o.w = f
	}
	buf := make([]byte, n)
	binary.LittleEndian.PutUint32(buf[0:], uint32(len(p)))
	binary.LittleEndian.PutUint32(buf[4:], crc(seq, p))
	binary.LittleEndian.PutUint64(buf[8:], seq)
	copy(buf[headerLen:], p)
	if _, err := o.w.Write(buf); err != nil {
		// Cut off whatever part was written so the next record starts clean.
		_ = o.w.Truncate(tail.size)
		return 0, fmt.Errorf("outbox: append record %d: %w", seq, err)
	}
	if !o.opts.NoSync {
		if err := o.w.Sync(); err != nil {
			return 0, fmt.Errorf("outbox: sync record %d: %w", seq, err)
		}
	}
	tail.entries = append(tail.entries, entry{seq: seq, off: tail.size + headerLen, n: len(p)})
	tail.size += n
	o.bytes += n
	o.nextSeq++
	close(o.cond)
	o.cond = make(chan struct{})
	return seq, nil
}

func (o *Outbox) tail() *segment {
	if len(o.segs) == 0 {
		return nil
	}
	return o.segs[len(o.segs)-1]
}

// newSegment starts a new tail segment whose first record is seq.
func (o *Outbox) newSegment(seq uint64) error {
	if o.w != nil {
		if err := o.w.Close(); err != nil {
			return fmt.Errorf("outbox: close segment: %w", err)
		}
		o.w = nil
	}
	s := &segment{first: seq, path: filepath.Join(o.dir, fmt.Sprintf("%016x%s", seq, segSuffix))}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("outbox: create segment: %w", err)
	}
	if !o.opts.NoSync {
		if d, err := os.Open(o.dir); err == nil {
			_ = d.Sync()
			d.Close()
		}
	}
	o.w = f
	o.segs = append(o.segs, s)
	return nil
}

// makeRoom drops the oldest segments until n more bytes fit in MaxBytes.
func (o *Outbox) makeRoom(n int64) error {
	for o.bytes+n > o.opts.MaxBytes && len(o.segs) > 0 {
		s := o.segs[0]
		if s == o.tail() {
			// Dropping the segment being written: start a fresh one.
			if o.w != nil {
				o.w.Close()
				o.w = nil
			}
		}
		lost := uint64(len(s.entries))
		if err := os.Remove(s.path); err != nil {
			return fmt.Errorf("outbox: full, drop oldest segment: %w", err)
		}
		o.segs = o.segs[1:]
		o.bytes -= s.size
		o.dropped += lost
		if lost > 0 {
			last := s.entries[lost-1].seq
			if last > o.acked {
				o.acked = last
			}
			o.log.Error("outbox full: dropped oldest undelivered events",
				"count", lost, "first_seq", s.entries[0].seq, "last_seq", last, "dropped_total", o.dropped)
		}
		if err := o.writeState(); err != nil {
			return err
		}
	}
	return nil
}

// Next blocks until there is an undelivered record and returns the oldest
// one. It returns the same record again until it is acked.
func (o *Outbox) Next(ctx context.Context) (Record, error) {
	for {
		o.mu.Lock()
		if o.closed {
			o.mu.Unlock()
			return Record{}, ErrClosed
		}
		for _, s := range o.segs {
			if len(s.entries) == 0 {
				continue
			}
			e := s.entries[0]
			r, err := o.read(s, e)
			o.mu.Unlock()
			return r, err
		}
		wait := o.cond
		o.mu.Unlock()
		select {
		case <-ctx.Done():
			return Record{}, ctx.Err()
		case <-wait:
		}
	}
}

func (o *Outbox) read(s *segment, e entry) (Record, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return Record{}, fmt.Errorf("outbox: open segment: %w", err)
	}
	defer f.Close()
	buf := make([]byte, e.n)
	if _, err := io.ReadFull(io.NewSectionReader(f, e.off, int64(e.n)), buf); err != nil {
		return Record{}, fmt.Errorf("outbox: read record %d: %w", e.seq, err)
	}
	return Record{Seq: e.seq, Payload: buf}, nil
}

// Ack marks every record with a sequence number up to seq as delivered and
// deletes segments that hold no undelivered record.
func (o *Outbox) Ack(seq uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return ErrClosed
	}
	if seq <= o.acked {
		return nil
	}
	o.acked = seq
	for len(o.segs) > 0 {
		s := o.segs[0]
		i := sort.Search(len(s.entries), func(i int) bool { return s.entries[i].seq > seq })
		s.entries = s.entries[i:]
		if len(s.entries) > 0 || s == o.tail() {
			break
		}
		if err := os.Remove(s.path); err != nil {
			return fmt.Errorf("outbox: remove delivered segment: %w", err)
		}
		o.segs = o.segs[1:]
		o.bytes -= s.size
	}
	if t := o.tail(); t != nil && len(t.entries) == 0 && len(o.segs) == 1 && t.size >= o.opts.SegmentBytes {
		// Everything delivered and the tail is full: start over.
		if o.w != nil {
			o.w.Close()
			o.w = nil
		}
		if err := os.Remove(t.path); err != nil {
			return fmt.Errorf("outbox: remove delivered segment: %w", err)
		}
		o.segs = nil
		o.bytes = 0
	}
	return o.writeState()
}

// Pending returns the number of undelivered records.
func (o *Outbox) Pending() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	var n uint64
	for _, s := range o.segs {
		n += uint64(len(s.entries))
	}
	return n
}

// Dropped returns the total number of undelivered records dropped because
// the outbox was full (persisted across restarts).
func (o *Outbox) Dropped() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dropped
}

// Close closes the outbox; pending records stay on disk for the next Open.
func (o *Outbox) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil
	}
	o.closed = true
	close(o.cond)
	var err error
	if o.w != nil {
		err = o.w.Close()
	}
	if werr := o.writeState(); err == nil {
		err = werr
	}
	return err
}
