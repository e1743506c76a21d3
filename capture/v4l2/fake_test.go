package v4l2

import (
	"errors"
	"sync"
	"syscall"

	"github.com/blackjack/webcam"

	"github.com/facegate/facegate/capture"
)

// fakeCam is an in-memory Device. Like the driver it hands out the same
// few buffers again and again, and scribbles over a buffer once it is
// released, so a source that keeps driver memory would see garbage.
type fakeCam struct {
	mu        sync.Mutex
	formats   map[webcam.PixelFormat]string
	sizes     map[webcam.PixelFormat][]webcam.FrameSize
	mode      Mode
	buffers   [][]byte
	next      uint32 // buffer index to fill next
	count     int    // frames produced
	streaming bool
	closed    bool
	// script, consumed one entry per WaitForFrame: nil = a frame is
	// ready, otherwise that error.
	waits []error
	// dqErr is returned by the next GetFrame.
	dqErr  error
	fps    float32
	nbufs  uint32
	frame  func(n int, m Mode) []byte
	gotten map[uint32]bool
	busy   bool // another process streams: S_FMT fails with EBUSY
}

func newFakeCam() *fakeCam {
	return &fakeCam{
		formats: map[webcam.PixelFormat]string{
			webcam.PixelFormat(capture.FormatYUYV):  "YUYV 4:2:2",
			webcam.PixelFormat(capture.FormatMJPEG): "Motion-JPEG",
		},
		sizes: map[webcam.PixelFormat][]webcam.FrameSize{
			webcam.PixelFormat(capture.FormatYUYV): {
				disc(640, 480), disc(320, 240), disc(1280, 720),
			},
			webcam.PixelFormat(capture.FormatMJPEG): {
				disc(1920, 1080), disc(1280, 720), disc(640, 480),
			},
		},
		gotten: map[uint32]bool{},
	}
}

func disc(w, h uint32) webcam.FrameSize {
	return webcam.FrameSize{MinWidth: w, MaxWidth: w, MinHeight: h, MaxHeight: h}
}

func (c *fakeCam) GetSupportedFormats() map[webcam.PixelFormat]string { return c.formats }
func (c *fakeCam) GetSupportedFrameSizes(f webcam.PixelFormat) []webcam.FrameSize {
	return c.sizes[f]
}
func (c *fakeCam) SetImageFormat(f webcam.PixelFormat, w, h uint32) (webcam.PixelFormat, uint32, uint32, error) {
	if c.busy {
		return 0, 0, 0, syscall.EBUSY
	}
	if _, ok := c.formats[f]; !ok {
		return 0, 0, 0, syscall.EINVAL
	}
	c.mode = Mode{Format: capture.PixelFormat(f), Width: int(w), Height: int(h)}
	return f, w, h, nil
}
func (c *fakeCam) SetFramerate(fps float32) error { c.fps = fps; return nil }
func (c *fakeCam) SetBufferCount(n uint32) error  { c.nbufs = n; return nil }
func (c *fakeCam) StartStreaming() error {
	n := c.mode.Format.FrameSize(c.mode.Width, c.mode.Height)
	if n == 0 {
		n = 64 << 10
	}
	c.buffers = make([][]byte, c.nbufs)
	for i := range c.buffers {
		c.buffers[i] = make([]byte, n)
	}
	c.streaming = true
	return nil
}

func (c *fakeCam) WaitForFrame(uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return syscall.EBADF
	}
	if len(c.waits) > 0 {
		e := c.waits[0]
		c.waits = c.waits[1:]
		return e
	}
	return nil
}

func (c *fakeCam) GetFrame() ([]byte, uint32, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dqErr != nil {
		e := c.dqErr
		c.dqErr = nil
		return nil, 0, e
	}
	i := c.next
	c.next = (c.next + 1) % uint32(len(c.buffers))
	if c.gotten[i] {
		return nil, 0, errors.New("fake: buffer dequeued twice without release")
	}
	c.gotten[i] = true
	c.count++
	var data []byte
	if c.frame != nil {
		data = c.frame(c.count, c.mode)
	} else {
		data = []byte{byte(c.count), byte(c.count >> 8), 0xAB}
	}
	n := copy(c.buffers[i], data)
	return c.buffers[i][:n], i, nil
}

func (c *fakeCam) ReleaseFrame(i uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.gotten[i] {
		return errors.New("fake: release of a buffer not dequeued")
	}
	delete(c.gotten, i)
	for j := range c.buffers[i] { // the driver reuses the buffer
		c.buffers[i][j] = 0xEE
	}
	return nil
}

func (c *fakeCam) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

// fakeBus hands out fakeCams and can simulate unplugged or forbidden
// devices.
type fakeBus struct {
	mu      sync.Mutex
	cams    []*fakeCam
	openErr []error // consumed per Open before succeeding
	opens   int
	setup   func(*fakeCam)
}

func (b *fakeBus) open(path string) (Device, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.opens++
	if len(b.openErr) > 0 {
		e := b.openErr[0]
		b.openErr = b.openErr[1:]
		if e != nil {
			return nil, openError(path, e)
		}
	}
	c := newFakeCam()
	if b.setup != nil {
		b.setup(c)
	}
	b.cams = append(b.cams, c)
	return c, nil
}

func (b *fakeBus) last() *fakeCam {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cams[len(b.cams)-1]
}
