package mqtt

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"
)

func testPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func testJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	img.Set(1, 1, color.Gray{Y: 200})
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pngHeader is a PNG signature and IHDR claiming w x h pixels (no data).
func pngHeader(w, h uint32) []byte {
	chunk := []byte("IHDR")
	chunk = append(chunk, byte(w>>24), byte(w>>16), byte(w>>8), byte(w), byte(h>>24), byte(h>>16), byte(h>>8), byte(h), 8, 2, 0, 0, 0)
	sum := crc32.ChecksumIEEE(chunk)
	b := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0d"), chunk...)
	return append(b, byte(sum>>24), byte(sum>>16), byte(sum>>8), byte(sum))
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

type decodeCase struct {
	name    string
	payload string
	code    Code // "" = accepted
	field   string
}

func enrollCases(t testing.TB) []decodeCase {
	p, j := b64(testPNG(t, 8, 8)), b64(testJPEG(t, 8, 8))
	big := b64(make([]byte, 2<<20))
	huge := b64(pngHeader(20000, 20000))
	imgs := func(list ...string) string {
		b, _ := json.Marshal(list)
		return string(b)
	}
	sig := `,"key_id":"k1","ts":1767225600,"nonce":"nonce-0123456789","sig":"abababababababababababababababababababababababababababababababab"`
	return []decodeCase{
		{"add png", `{"request_id":"r1","op":"add","subject_id":"alice","name":"Alice","images":` + imgs(p) + `}`, "", ""},
		{"add jpeg x5 signed", `{"request_id":"r2","op":"add","subject_id":"alice","images":` + imgs(j, p, j, p, j) + sig + `}`, "", ""},
		{"add_images", `{"request_id":"r3","op":"add_images","subject_id":"a.b-c_d","images":` + imgs(p) + `}`, "", ""},
		{"delete", `{"request_id":"r4","op":"delete","subject_id":"alice"}`, "", ""},
		{"list", `{"request_id":"r5","op":"list"}`, "", ""},
		{"camera", `{"request_id":"r6","op":"enroll_from_camera","subject_id":"bob","name":"Bob","frames":3}`, "", ""},
		{"not json", `hello`, CodeBadFormat, ""},
		{"array", `[1,2]`, CodeBadRequest, ""},
		{"trailing", `{"request_id":"r","op":"list"} {}`, CodeBadFormat, ""},
		{"unknown field", `{"request_id":"r","op":"list","admin":true}`, CodeBadRequest, ""},
		{"missing request_id", `{"op":"list"}`, CodeBadRequest, "request_id"},
		{"request_id with slash", `{"request_id":"a/b","op":"list"}`, CodeBadRequest, "request_id"},
		{"request_id wildcard", `{"request_id":"#","op":"list"}`, CodeBadRequest, "request_id"},
		{"request_id too long", `{"request_id":"` + strings.Repeat("x", 65) + `","op":"list"}`, CodeBadRequest, "request_id"},
		{"missing op", `{"request_id":"r"}`, CodeBadRequest, "op"},
		{"bad op", `{"request_id":"r","op":"drop_table"}`, CodeBadRequest, "op"},
		{"op wrong type", `{"request_id":"r","op":7}`, CodeBadRequest, "op"},
		{"add without subject", `{"request_id":"r","op":"add","images":` + imgs(p) + `}`, CodeBadRequest, "subject_id"},
		{"add without images", `{"request_id":"r","op":"add","subject_id":"a"}`, CodeBadRequest, "images"},
		{"add empty images", `{"request_id":"r","op":"add","subject_id":"a","images":[]}`, CodeBadRequest, "images"},
		{"six images", `{"request_id":"r","op":"add","subject_id":"a","images":` + imgs(p, p, p, p, p, p) + `}`, CodeTooLarge, "images"},
		{"delete with images", `{"request_id":"r","op":"delete","subject_id":"a","images":` + imgs(p) + `}`, CodeBadRequest, "images"},
		{"image not base64", `{"request_id":"r","op":"add","subject_id":"a","images":["%%%"]}`, CodeBadFormat, "images[0]"},
		{"image not an image", `{"request_id":"r","op":"add","subject_id":"a","images":["` + b64([]byte("GIF89a......")) + `"]}`, CodeBadFormat, "images[0]"},
		{"image truncated png", `{"request_id":"r","op":"add","subject_id":"a","images":["` + b64([]byte("\x89PNG\r\n\x1a\n")) + `"]}`, CodeBadFormat, "images[0]"},
		{"second image too large", `{"request_id":"r","op":"add","subject_id":"a","images":` + imgs(p, big) + `}`, CodeTooLarge, "images[1]"},
		{"decompression bomb", `{"request_id":"r","op":"add","subject_id":"a","images":["` + huge + `"]}`, CodeTooLarge, "images[0]"},
		{"camera without frames", `{"request_id":"r","op":"enroll_from_camera","subject_id":"a"}`, CodeBadRequest, "frames"},
		{"camera 9 frames", `{"request_id":"r","op":"enroll_from_camera","subject_id":"a","frames":9}`, CodeBadRequest, "frames"},
		{"frames on add", `{"request_id":"r","op":"add","subject_id":"a","frames":2,"images":` + imgs(p) + `}`, CodeBadRequest, "frames"},
		{"name on delete", `{"request_id":"r","op":"delete","subject_id":"a","name":"x"}`, CodeBadRequest, "name"},
		{"name with newline", `{"request_id":"r","op":"add","subject_id":"a","name":"x\ny","images":` + imgs(p) + `}`, CodeBadRequest, "name"},
		{"sig without key", `{"request_id":"r","op":"list","sig":"abc"}`, CodeBadRequest, "key_id"},
		{"key without sig", `{"request_id":"r","op":"list","key_id":"k","ts":5,"nonce":"nonce-0123456789"}`, CodeBadRequest, "sig"},
		{"sig bad chars", `{"request_id":"r","op":"list","key_id":"k","ts":5,"nonce":"nonce-0123456789","sig":"a b"}`, CodeBadRequest, "sig"},
		{"ts string", `{"request_id":"r","op":"list","ts":"now"}`, CodeBadRequest, "ts"},
		{"nonce short", `{"request_id":"r","op":"list","key_id":"k","ts":5,"nonce":"n","sig":"` + strings.Repeat("ab", 32) + `"}`, CodeBadRequest, "nonce"},
		{"sig uppercase", `{"request_id":"r","op":"list","key_id":"k","ts":5,"nonce":"nonce-0123456789","sig":"` + strings.Repeat("AB", 32) + `"}`, CodeBadRequest, "sig"},
		{"payload too large", `{"request_id":"r","op":"list","name":"` + strings.Repeat("a", 9<<20) + `"}`, CodeTooLarge, ""},
	}
}

func checkDecodeErr(t *testing.T, err error, c decodeCase) {
	t.Helper()
	if c.code == "" {
		if err != nil {
			t.Fatalf("rejected: %v", err)
		}
		return
	}
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T), want *DecodeError %s", err, err, c.code)
	}
	if de.Code != c.code || de.Field != c.field {
		t.Fatalf("got code %q field %q (%v), want %q %q", de.Code, de.Field, err, c.code, c.field)
	}
	if CodeOf(err) != c.code {
		t.Fatalf("CodeOf = %q", CodeOf(err))
	}
}

func TestDecodeEnrollRequest(t *testing.T) {
	for _, c := range enrollCases(t) {
		t.Run(c.name, func(t *testing.T) {
			r, err := DecodeEnrollRequest([]byte(c.payload), Limits{})
			checkDecodeErr(t, err, c)
			if err == nil && len(r.ImageData()) != len(r.Images) {
				t.Fatalf("%d decoded images for %d", len(r.ImageData()), len(r.Images))
			}
		})
	}
}

func TestDecodeEnrollImageIndexAndBytes(t *testing.T) {
	p := testPNG(t, 8, 8)
	payload := `{"request_id":"r","op":"add","subject_id":"a","images":["` + b64(p) + `","` + b64([]byte("nope")) + `"]}`
	_, err := DecodeEnrollRequest([]byte(payload), Limits{})
	var de *DecodeError
	if !errors.As(err, &de) || de.Image != 1 {
		t.Fatalf("err %v: want image index 1", err)
	}
	r, err := DecodeEnrollRequest([]byte(`{"request_id":"r","op":"add","subject_id":"a","images":["`+b64(p)+`"]}`), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.ImageData()[0], p) {
		t.Fatal("decoded image bytes differ from the original file")
	}
}

func TestDecodeLimitsAreConfigurable(t *testing.T) {
	p := b64(testPNG(t, 64, 64))
	payload := []byte(`{"request_id":"r","op":"add","subject_id":"a","images":["` + p + `"]}`)
	if _, err := DecodeEnrollRequest(payload, Limits{MaxPixels: 32 * 32}); CodeOf(err) != CodeTooLarge {
		t.Fatalf("64x64 with MaxPixels 1024: %v", err)
	}
	if _, err := DecodeEnrollRequest(payload, Limits{MaxImageBytes: 10}); CodeOf(err) != CodeTooLarge {
		t.Fatalf("MaxImageBytes 10: %v", err)
	}
	if _, err := DecodeEnrollRequest(payload, Limits{MaxPayload: 100}); CodeOf(err) != CodeTooLarge {
		t.Fatalf("MaxPayload 100: %v", err)
	}
}

func claimCases() []decodeCase {
	return []decodeCase{
		{"ok", `{"request_id":"c1","subject_id":"alice"}`, "", ""},
		{"ok signed timeout", `{"request_id":"c2","subject_id":"alice","timeout_ms":5000,"key_id":"k","ts":1767225600,"nonce":"nonce-0123456789","sig":"abababababababababababababababababababababababababababababababab"}`, "", ""},
		{"missing subject", `{"request_id":"c1"}`, CodeBadRequest, "subject_id"},
		{"missing request", `{"subject_id":"a"}`, CodeBadRequest, "request_id"},
		{"timeout negative", `{"request_id":"c","subject_id":"a","timeout_ms":-1}`, CodeBadRequest, "timeout_ms"},
		{"timeout huge", `{"request_id":"c","subject_id":"a","timeout_ms":600000}`, CodeBadRequest, "timeout_ms"},
		{"unknown field", `{"request_id":"c","subject_id":"a","grant":true}`, CodeBadRequest, ""},
		{"not json", `{`, CodeBadFormat, ""},
		{"too large", `{"request_id":"c","subject_id":"` + strings.Repeat("a", 5000) + `"}`, CodeTooLarge, ""},
		{"subject wildcard", `{"request_id":"c","subject_id":"+"}`, CodeBadRequest, "subject_id"},
	}
}

func TestDecodeClaim(t *testing.T) {
	for _, c := range claimCases() {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeClaim([]byte(c.payload), Limits{})
			checkDecodeErr(t, err, c)
		})
	}
}

func feedbackCases() []decodeCase {
	return []decodeCase{
		{"correct", `{"event_id":"e1","correct":true,"operator":"guard 1"}`, "", ""},
		{"wrong with note", `{"event_id":"e1","correct":false,"operator":"guard","note":"tailgater, not Alice"}`, "", ""},
		{"missing correct", `{"event_id":"e1","operator":"g"}`, CodeBadRequest, "correct"},
		{"correct string", `{"event_id":"e1","correct":"yes","operator":"g"}`, CodeBadRequest, "correct"},
		{"missing operator", `{"event_id":"e1","correct":true}`, CodeBadRequest, "operator"},
		{"missing event", `{"correct":true,"operator":"g"}`, CodeBadRequest, "event_id"},
		{"note too long", `{"event_id":"e1","correct":true,"operator":"g","note":"` + strings.Repeat("n", 1025) + `"}`, CodeBadRequest, "note"},
		{"operator control char", `{"event_id":"e1","correct":true,"operator":"g\u0007"}`, CodeBadRequest, "operator"},
		{"invalid utf8", "{\"event_id\":\"e1\",\"correct\":true,\"operator\":\"g\xff\"}", CodeBadRequest, "operator"},
		{"null", `null`, CodeBadRequest, "event_id"},
	}
}

func TestDecodeFeedback(t *testing.T) {
	for _, c := range feedbackCases() {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeFeedback([]byte(c.payload), Limits{})
			checkDecodeErr(t, err, c)
		})
	}
}

func TestRequestIDOf(t *testing.T) {
	for payload, want := range map[string]string{
		`{"request_id":"r9","op":"nope"}`: "r9",
		`{"request_id":"a/b"}`:            "",
		`garbage`:                         "",
		`{"request_id":7}`:                "",
	} {
		if got := RequestIDOf([]byte(payload), Limits{}); got != want {
			t.Errorf("RequestIDOf(%s) = %q, want %q", payload, got, want)
		}
	}
}

func TestCanonicalBodyCoversEveryField(t *testing.T) {
	p := testPNG(t, 8, 8)
	base := func() *EnrollRequest {
		r, err := DecodeEnrollRequest([]byte(`{"request_id":"r","op":"add","subject_id":"a","name":"A","images":["`+b64(p)+`"],"key_id":"k","ts":1,"nonce":"nonce-0123456789","sig":"abababababababababababababababababababababababababababababababab"}`), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	ref := base().CanonicalBody("door1")
	if !bytes.Contains(ref, []byte("device_id:5:door1\n")) || !bytes.Contains(ref, []byte("images:")) {
		t.Fatalf("canonical body: %q", ref)
	}
	// Signature fields are not part of the body; the rest all are.
	r := base()
	r.Sig, r.Nonce = "other", "other"
	if !bytes.Equal(r.CanonicalBody("door1"), ref) {
		t.Fatal("auth fields changed the canonical body")
	}
	mutations := map[string]func(r *EnrollRequest){
		"request_id": func(r *EnrollRequest) { r.RequestID = "r2" },
		"op":         func(r *EnrollRequest) { r.Op = OpAddImages },
		"subject":    func(r *EnrollRequest) { r.SubjectID = "b" },
		"name":       func(r *EnrollRequest) { r.Name = "B" },
		"frames":     func(r *EnrollRequest) { r.Frames = 1 },
		"image":      func(r *EnrollRequest) { r.decoded[0] = testJPEG(t, 8, 8) },
	}
	for name, m := range mutations {
		r := base()
		m(r)
		if bytes.Equal(r.CanonicalBody("door1"), ref) {
			t.Errorf("changing %s does not change the canonical body", name)
		}
	}
	if bytes.Equal(base().CanonicalBody("door2"), ref) {
		t.Error("device id not covered")
	}
	tr := true
	f := &Feedback{EventID: "e", Correct: &tr, Operator: "o"}
	fb := f.CanonicalBody("d")
	fa := false
	f.Correct = &fa
	if bytes.Equal(fb, f.CanonicalBody("d")) {
		t.Error("feedback verdict not covered")
	}
	c := &Claim{RequestID: "c", SubjectID: "s"}
	cb := c.CanonicalBody("d")
	c.SubjectID = "t"
	if bytes.Equal(cb, c.CanonicalBody("d")) || c.Operation() != "claim" {
		t.Error("claim subject not covered")
	}
}
