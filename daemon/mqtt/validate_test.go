package mqtt

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/facegate/facegate/daemon/auth"
)

// Issue 15, item 9: names refuse bidi and invisible characters, messages
// name the offending rune, and the signer refuses what the decoder would.
func TestNamesAndIDsOneValidation(t *testing.T) {
	img := "/9j/4AAQSkZJRgABAQ==" // header-only JPEG bytes are checked later
	for _, tc := range []struct {
		name, payload, field, want string
	}{
		{"rtl override in name", `{"request_id":"r1","op":"add","subject_id":"a","name":"Evil\u202Egnp.exe","images":["` + img + `"]}`, "name", "bidirectional formatting character U+202E"},
		{"isolate in name", `{"request_id":"r1","op":"add","subject_id":"a","name":"A\u2067B","images":["` + img + `"]}`, "name", "U+2067"},
		{"zero width in name", `{"request_id":"r1","op":"add","subject_id":"a","name":"A\u200bB","images":["` + img + `"]}`, "name", "invisible format character U+200B"},
		{"accented subject id", `{"request_id":"r1","op":"delete","subject_id":"José"}`, "subject_id", `"é" (U+00E9)`},
		{"colon request id", `{"request_id":"a:b","op":"list"}`, "request_id", `":" (U+003A)`},
	} {
		_, err := DecodeEnrollRequest([]byte(tc.payload), Limits{})
		var de *DecodeError
		if !errors.As(err, &de) || de.Code != CodeBadRequest || de.Field != tc.field || !strings.Contains(de.Msg, tc.want) {
			t.Errorf("%s: %v, want bad_request on %s containing %q", tc.name, err, tc.field, tc.want)
		}
	}
	if _, err := DecodeEnrollRequest([]byte(`{"request_id":"r1","op":"delete","subject_id":"jose"}`), Limits{}); err != nil {
		t.Fatalf("plain request refused: %v", err)
	}

	k, _ := auth.NewKey("ops", bytes.Repeat([]byte{1}, 32))
	for _, r := range []*EnrollRequest{
		{RequestID: "a:b", Op: OpList},                              // auth used to accept ':' and 128 chars
		{RequestID: strings.Repeat("x", 65), Op: OpList},            // longer than the decoder's 64
		{RequestID: "r", Op: OpAdd, SubjectID: "José"},              // the decoder refuses it
		{RequestID: "r", Op: OpAdd, SubjectID: "a", Name: "\u202e"}, // bidi
	} {
		if _, err := Sign(k, r, "door1", time.Now()); err == nil {
			t.Errorf("Sign accepted %+v, which the decoder refuses", r)
		}
	}
	if _, err := Sign(k, &EnrollRequest{RequestID: "r-1.x_y", Op: OpAdd, SubjectID: "a", Name: "José Ñ"}, "door1", time.Now()); err != nil {
		t.Fatalf("Sign refused a valid request: %v", err)
	}
}
