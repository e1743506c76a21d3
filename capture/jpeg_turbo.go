//go:build turbojpeg && cgo

package capture

// Built with -tags turbojpeg: MJPEG frames are decoded by libjpeg-turbo
// (capture/internal/turbojpeg) instead of image/jpeg. Not the default; see
// docs/benchmarks.md.

import (
	"fmt"

	"github.com/facegate/facegate/capture/internal/turbojpeg"
)

func init() {
	jpegBackendName = "libjpeg-turbo"
	jpegBackend = func(data []byte) (*RGB, error) {
		pix, w, h, err := turbojpeg.Decode(data)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		return &RGB{Pix: pix, Stride: 3 * w, W: w, H: h}, nil
	}
}
