//go:build !turbojpeg || !cgo

package turbojpeg

import "errors"

// Available reports whether this build has the libjpeg-turbo decoder.
const Available = false

// Decode is unavailable without the turbojpeg build tag.
func Decode([]byte) ([]byte, int, int, error) {
	return nil, 0, 0, errors.New("turbojpeg: built without the turbojpeg tag")
}
