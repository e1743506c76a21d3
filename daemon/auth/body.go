package auth

import (
	"fmt"
	"strconv"
)

// BodyField is one named value of a structured request.
type BodyField struct {
	Name  string // 1-64 of [a-z0-9_]
	Value string
}

// Body encodes the fields of a structured request (such as the decoded JSON
// members of an enrollment request other than the authentication fields)
// for Request.Body, so that signer and verifier agree on the signed bytes
// whatever JSON spacing, member order or string escaping the transport
// used. Each field becomes
//
//	<name>:<len(value) in bytes, decimal>:<value>\n
//
// in the order given; the length prefix makes the encoding unambiguous for
// any value. Both sides must list the same fields in the same order, with
// absent optional fields as empty values.
func Body(fields ...BodyField) ([]byte, error) {
	n := 0
	for _, f := range fields {
		if len(f.Name) == 0 || len(f.Name) > 64 || !allBytes(f.Name, isBodyNameByte) {
			return nil, fmt.Errorf("%w: body field name %q must be 1-64 of [a-z0-9_]", ErrMalformed, f.Name)
		}
		n += len(f.Name) + len(f.Value) + 24
	}
	b := make([]byte, 0, n)
	for _, f := range fields {
		b = append(b, f.Name...)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(len(f.Value)), 10)
		b = append(b, ':')
		b = append(b, f.Value...)
		b = append(b, '\n')
	}
	return b, nil
}

func isBodyNameByte(c byte) bool { return c >= 'a' && c <= 'z' || isDigit(c) || c == '_' }
