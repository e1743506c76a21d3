package file

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/facegate/facegate/capture"
)

// MaxJPEGSize bounds one MJPEG frame; anything larger is treated as
// corruption (a missing EOI would otherwise swallow the whole file).
const MaxJPEGSize = 16 << 20

// MJPEG plays an MJPEG stream file: JPEG images back to back, possibly
// with junk (multipart headers, garbage) between them. Frames are split by
// walking the JPEG marker structure, so thumbnails inside APP segments do
// not confuse it; truncated and mangled frames are skipped and counted.
// Frames are delivered undecoded (FormatMJPEG); decoding errors inside an
// intact marker structure are caught and counted by capture.Latest.
type MJPEG struct {
	path string
	f    *os.File
	sp   *splitter
	seq  uint64
	opts Options
	pace *pacer
	good int
}

// OpenMJPEG opens an MJPEG stream file.
func OpenMJPEG(path string, opts Options) (*MJPEG, error) {
	opts.defaults()
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("mjpeg file: %w", err)
	}
	return &MJPEG{path: path, f: f, sp: newSplitter(f), opts: opts, pace: newPacer(opts.rate(0))}, nil
}

// Next returns the next intact frame.
func (m *MJPEG) Next(ctx context.Context) (capture.Frame, error) {
	for {
		if m.f == nil {
			return capture.Frame{}, capture.ErrClosed
		}
		data, w, h, err := m.sp.next()
		switch {
		case err == io.EOF:
			if m.seq == 0 {
				return capture.Frame{}, fmt.Errorf("mjpeg file %s: no intact frame in the whole file", m.path)
			}
			if !m.opts.Loop {
				return capture.Frame{}, io.EOF
			}
			if m.good == 0 {
				return capture.Frame{}, fmt.Errorf("mjpeg file %s: no intact frame in the whole file", m.path)
			}
			if _, err := m.f.Seek(0, io.SeekStart); err != nil {
				return capture.Frame{}, fmt.Errorf("mjpeg file %s: rewind: %w", m.path, err)
			}
			m.sp = newSplitter(m.f)
			m.good = 0
			continue
		case errors.Is(err, capture.ErrCorrupt):
			m.opts.Metrics.Corrupt()
			m.opts.Logger.Warn("capture: skipping corrupt MJPEG frame", "file", m.path, "err", err)
			continue
		case err != nil:
			return capture.Frame{}, fmt.Errorf("mjpeg file %s: %w", m.path, err)
		}
		if err := m.pace.wait(ctx); err != nil {
			return capture.Frame{}, err
		}
		m.seq++
		m.good++
		m.opts.Metrics.FrameIn()
		return capture.Frame{Seq: m.seq, Time: time.Now(), Width: w, Height: h, Format: capture.FormatMJPEG, Data: data}, nil
	}
}

// Close closes the file.
func (m *MJPEG) Close() error {
	if m.f == nil {
		return nil
	}
	err := m.f.Close()
	m.f = nil
	return err
}

// splitter cuts JPEG images out of a byte stream.
type splitter struct {
	r   *bufio.Reader
	off int64 // bytes consumed
	// soi: the SOI of the next frame was already consumed (it ended a
	// truncated frame).
	soi bool
}

func newSplitter(r io.Reader) *splitter { return &splitter{r: bufio.NewReaderSize(r, 1<<16)} }

func (s *splitter) readByte() (byte, error) {
	b, err := s.r.ReadByte()
	if err == nil {
		s.off++
	}
	return b, err
}

// next returns one complete JPEG (SOI..EOI) and the size from its SOF
// header (0 if none), io.EOF at the end, or an error wrapping
// capture.ErrCorrupt for a frame that had to be dropped.
func (s *splitter) next() (frame []byte, w, h int, err error) {
	start := s.off
	if !s.soi {
		// Find SOI, skipping anything before it.
		// Junk between frames (multipart headers) is skipped silently;
		// junk holding 0xFF bytes is likely a mangled frame and is counted.
		var prev byte
		sawFF := false
		for {
			b, err := s.readByte()
			if err == io.EOF {
				if sawFF {
					return nil, 0, 0, fmt.Errorf("%w: %d bytes of junk without a frame start at offset %d", capture.ErrCorrupt, s.off-start, start)
				}
				return nil, 0, 0, io.EOF
			}
			if b == 0xff {
				sawFF = true
			}
			if err != nil {
				return nil, 0, 0, err
			}
			if prev == 0xff && b == 0xd8 {
				break
			}
			prev = b
		}
	}
	s.soi = false
	at := s.off - 2
	buf := []byte{0xff, 0xd8}
	truncated := func(why string) error {
		return fmt.Errorf("%w: frame at offset %d truncated (%s)", capture.ErrCorrupt, at, why)
	}
	var marker byte
	readMarker := func() error {
		b, err := s.readByte()
		if err != nil {
			return err
		}
		if b != 0xff {
			return fmt.Errorf("%w: frame at offset %d: expected a marker, got 0x%02x at offset %d", capture.ErrCorrupt, at, b, s.off-1)
		}
		for b == 0xff {
			if b, err = s.readByte(); err != nil {
				return err
			}
		}
		marker = b
		return nil
	}
	if err := readMarker(); err != nil {
		if err == io.EOF {
			return nil, 0, 0, truncated("end of file")
		}
		return nil, 0, 0, err
	}
	for {
		if len(buf) > MaxJPEGSize {
			return nil, 0, 0, fmt.Errorf("%w: frame at offset %d larger than %d bytes", capture.ErrCorrupt, at, MaxJPEGSize)
		}
		switch {
		case marker == 0xd9: // EOI
			return append(buf, 0xff, 0xd9), w, h, nil
		case marker == 0xd8: // a new frame started: this one is cut short
			s.soi = true
			return nil, 0, 0, truncated("next frame starts inside it")
		case marker == 0x01 || marker >= 0xd0 && marker <= 0xd7:
			buf = append(buf, 0xff, marker)
			if err := readMarker(); err != nil {
				return nil, 0, 0, s.eofIsTruncation(err, truncated)
			}
			continue
		}
		var l [2]byte
		if _, err := io.ReadFull(s.r, l[:]); err != nil {
			return nil, 0, 0, s.eofIsTruncation(err, truncated)
		}
		s.off += 2
		n := int(l[0])<<8 | int(l[1])
		if n < 2 {
			return nil, 0, 0, fmt.Errorf("%w: frame at offset %d: bad segment length %d", capture.ErrCorrupt, at, n)
		}
		seg := make([]byte, n-2)
		if _, err := io.ReadFull(s.r, seg); err != nil {
			return nil, 0, 0, s.eofIsTruncation(err, truncated)
		}
		s.off += int64(n - 2)
		buf = append(buf, 0xff, marker, l[0], l[1])
		buf = append(buf, seg...)
		if isSOF(marker) && len(seg) >= 5 {
			h = int(seg[1])<<8 | int(seg[2])
			w = int(seg[3])<<8 | int(seg[4])
		}
		if marker != 0xda { // not SOS: next segment
			if err := readMarker(); err != nil {
				return nil, 0, 0, s.eofIsTruncation(err, truncated)
			}
			continue
		}
		// Entropy-coded data: runs until a marker other than stuffing
		// (FF 00), restart markers or fill bytes.
		for {
			b, err := s.readByte()
			if err != nil {
				return nil, 0, 0, s.eofIsTruncation(err, truncated)
			}
			if b != 0xff {
				buf = append(buf, b)
				continue
			}
			n, err := s.readByte()
			for err == nil && n == 0xff {
				n, err = s.readByte()
			}
			if err != nil {
				return nil, 0, 0, s.eofIsTruncation(err, truncated)
			}
			if n == 0x00 || n >= 0xd0 && n <= 0xd7 {
				buf = append(buf, 0xff, n)
				continue
			}
			marker = n
			break
		}
		if len(buf) > MaxJPEGSize {
			return nil, 0, 0, fmt.Errorf("%w: frame at offset %d larger than %d bytes", capture.ErrCorrupt, at, MaxJPEGSize)
		}
	}
}

func (s *splitter) eofIsTruncation(err error, truncated func(string) error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return truncated("end of file")
	}
	return err
}

// isSOF reports start-of-frame markers (C0-CF except DHT C4, JPG C8, DAC CC).
func isSOF(m byte) bool {
	return m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc
}
