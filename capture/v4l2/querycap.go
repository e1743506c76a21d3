package v4l2

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// v4l2Capability mirrors struct v4l2_capability (linux/videodev2.h).
type v4l2Capability struct {
	Driver       [16]byte
	Card         [32]byte
	BusInfo      [32]byte
	Version      uint32
	Capabilities uint32
	DeviceCaps   uint32
	Reserved     [3]uint32
}

const (
	vidiocQuerycap     = 0x80685600 // _IOR('V', 0, struct v4l2_capability)
	capVideoCapture    = 0x00000001
	capStreaming       = 0x04000000
	capDeviceCaps      = 0x80000000
	capMetaCapture     = 0x00800000
	capVideoOutput     = 0x00000002
	capVideoCaptureMPl = 0x00001000
)

// Caps is what VIDIOC_QUERYCAP says about one device node.
type Caps struct {
	Driver, Card, BusInfo string
	// Node holds the capabilities of this node (device_caps when the
	// driver reports them, else the device-wide set).
	Node uint32
}

// QueryCaps asks the node what it is. webcam.Open only looks at the
// device-wide capabilities, which for a UVC camera include video capture
// even on its metadata node; this looks at the node's own.
func QueryCaps(path string) (Caps, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return Caps{}, err
	}
	defer unix.Close(fd)
	var c v4l2Capability
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), vidiocQuerycap, uintptr(unsafe.Pointer(&c))); errno != 0 {
		return Caps{}, errno
	}
	caps := Caps{Driver: cstr(c.Driver[:]), Card: cstr(c.Card[:]), BusInfo: cstr(c.BusInfo[:]), Node: c.Capabilities}
	if c.Capabilities&capDeviceCaps != 0 {
		caps.Node = c.DeviceCaps
	}
	return caps, nil
}

// CaptureError explains why a node cannot be used, or returns nil.
func (c Caps) CaptureError() error {
	switch {
	case c.Node&capVideoCapture != 0 && c.Node&capStreaming != 0:
		return nil
	case c.Node&capVideoCapture != 0:
		return fmt.Errorf("%s (%s) does not support streaming I/O", c.Card, c.Driver)
	case c.Node&capMetaCapture != 0:
		return fmt.Errorf("%s (%s) node is a metadata node, not video capture: use the camera's other /dev/video* node", c.Card, c.Driver)
	case c.Node&capVideoCaptureMPl != 0:
		return fmt.Errorf("%s (%s) is a multi-planar capture device, which is not supported", c.Card, c.Driver)
	case c.Node&capVideoOutput != 0:
		return fmt.Errorf("%s (%s) node is a video output", c.Card, c.Driver)
	}
	return fmt.Errorf("%s (%s) node has no video capture (caps 0x%08x)", c.Card, c.Driver, c.Node)
}

func cstr(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// Format is the negotiated capture format as the driver reports it.
type Format struct {
	Width, Height int
	PixelFormat   uint32
	BytesPerLine  int
	SizeImage     int
}

// QueryFormat reads the node's current capture format (VIDIOC_G_FMT).
// V4L2 formats belong to the device, not the file handle, so a second
// open sees what the streaming handle negotiated. webcam.SetImageFormat
// returns the size that was asked for, not the one the driver picked, and
// hides bytesperline; this is how the source learns both.
func QueryFormat(path string) (Format, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return Format{}, err
	}
	defer unix.Close(fd)
	// struct v4l2_format: __u32 type; then a 200-byte union that is
	// pointer-aligned (offset 8 on 64-bit, 4 on 32-bit targets).
	off := int(unsafe.Sizeof(uintptr(0)))
	buf := make([]byte, off+200)
	const bufTypeVideoCapture = 1
	ne := nativeEndian()
	ne.PutUint32(buf[0:], bufTypeVideoCapture)
	req := uintptr(3<<30 | len(buf)<<16 | 'V'<<8 | 4) // _IOWR('V', 4, struct v4l2_format)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(&buf[0]))); errno != 0 {
		return Format{}, errno
	}
	p := buf[off:]
	return Format{
		Width:        int(ne.Uint32(p[0:])),
		Height:       int(ne.Uint32(p[4:])),
		PixelFormat:  ne.Uint32(p[8:]),
		BytesPerLine: int(ne.Uint32(p[16:])),
		SizeImage:    int(ne.Uint32(p[20:])),
	}, nil
}

func nativeEndian() binary.ByteOrder {
	x := uint16(1)
	if *(*byte)(unsafe.Pointer(&x)) == 1 {
		return binary.LittleEndian
	}
	return binary.BigEndian
}
