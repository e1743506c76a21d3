//go:build turbojpeg && cgo

package turbojpeg

/*
#cgo LDFLAGS: -lturbojpeg
#include <stdlib.h>
#include <turbojpeg.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"
)

// Available reports whether this build has the libjpeg-turbo decoder.
const Available = true

// TurboJPEG handles are not goroutine-safe: keep one per concurrent caller.
var handles = sync.Pool{New: func() any {
	h := C.tjInitDecompress()
	if h == nil {
		return nil
	}
	return h
}}

// Decode decodes a JPEG into packed RGB (3*w bytes per row).
func Decode(data []byte) (pix []byte, w, h int, err error) {
	if len(data) == 0 {
		return nil, 0, 0, errors.New("turbojpeg: empty frame")
	}
	hv := handles.Get()
	if hv == nil {
		return nil, 0, 0, errors.New("turbojpeg: tjInitDecompress failed")
	}
	handle := hv.(C.tjhandle)
	defer func() {
		// A handle that hit an error can stay in a bad state (later
		// frames fail with "Bogus Huffman table"): drop it.
		if err != nil {
			C.tjDestroy(handle)
			return
		}
		handles.Put(handle)
	}()
	var cw, ch, subsamp, colorspace C.int
	src := (*C.uchar)(unsafe.Pointer(&data[0]))
	if C.tjDecompressHeader3(handle, src, C.ulong(len(data)), &cw, &ch, &subsamp, &colorspace) != 0 {
		return nil, 0, 0, fmt.Errorf("turbojpeg: header: %s", C.GoString(C.tjGetErrorStr2(handle)))
	}
	w, h = int(cw), int(ch)
	if w <= 0 || h <= 0 || w > 16384 || h > 16384 {
		return nil, 0, 0, fmt.Errorf("turbojpeg: bad size %dx%d", w, h)
	}
	pix = make([]byte, w*h*3)
	if C.tjDecompress2(handle, src, C.ulong(len(data)), (*C.uchar)(unsafe.Pointer(&pix[0])), cw, C.int(w*3), ch, C.TJPF_RGB, 0) != 0 {
		// Warnings (e.g. premature end of data) still produce an image;
		// treat everything as an error, like image/jpeg.
		return nil, 0, 0, fmt.Errorf("turbojpeg: %s", C.GoString(C.tjGetErrorStr2(handle)))
	}
	return pix, w, h, nil
}
