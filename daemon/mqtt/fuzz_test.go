package mqtt

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
)

// checkFuzzErr: every rejection is a *DecodeError with a defined code.
func checkFuzzErr(t *testing.T, err error) {
	t.Helper()
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error is %T, not *DecodeError: %v", err, err)
	}
	if !slices.Contains(Codes, de.Code) {
		t.Fatalf("undefined code %q", de.Code)
	}
}

func FuzzDecodeEnrollRequest(f *testing.F) {
	for _, c := range enrollCases(f) {
		if len(c.payload) < 64<<10 {
			f.Add([]byte(c.payload))
		}
	}
	lim := Limits{MaxPayload: 64 << 10, MaxImageBytes: 16 << 10, MaxPixels: 256 * 256}
	f.Fuzz(func(t *testing.T, payload []byte) {
		r, err := DecodeEnrollRequest(payload, lim)
		if err != nil {
			checkFuzzErr(t, err)
			return
		}
		if checkID("request_id", r.RequestID, true) != nil || !r.Op.Valid() {
			t.Fatalf("accepted invalid request: %+v", r)
		}
		if len(r.ImageData()) != len(r.Images) || len(r.Images) > 5 {
			t.Fatalf("accepted %d images (%d decoded)", len(r.Images), len(r.ImageData()))
		}
		for _, b := range r.ImageData() {
			if len(b) > lim.MaxImageBytes || !(isJPEG(b) || isPNG(b)) {
				t.Fatal("accepted an image outside the limits")
			}
		}
		// An accepted request survives a round trip unchanged.
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := DecodeEnrollRequest(again, lim)
		if err != nil {
			t.Fatalf("re-encoded request rejected: %v", err)
		}
		if string(r2.CanonicalBody("d")) != string(r.CanonicalBody("d")) {
			t.Fatal("canonical body changed over a round trip")
		}
	})
}

func FuzzDecodeClaim(f *testing.F) {
	for _, c := range claimCases() {
		f.Add([]byte(c.payload))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, err := DecodeClaim(payload, Limits{})
		if err != nil {
			checkFuzzErr(t, err)
			return
		}
		if checkID("request_id", c.RequestID, true) != nil || checkID("subject_id", c.SubjectID, true) != nil {
			t.Fatalf("accepted invalid claim %+v", c)
		}
	})
}

func FuzzDecodeFeedback(f *testing.F) {
	for _, c := range feedbackCases() {
		f.Add([]byte(c.payload))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		fb, err := DecodeFeedback(payload, Limits{})
		if err != nil {
			checkFuzzErr(t, err)
			return
		}
		if fb.Correct == nil || fb.Operator == "" || checkID("event_id", fb.EventID, true) != nil {
			t.Fatalf("accepted invalid feedback %+v", fb)
		}
	})
}
