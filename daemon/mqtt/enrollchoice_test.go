package mqtt

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// Issue 13: face choices and force are decoded, validated, signed and
// described by the schemas; get is an operation.
func TestEnrollFaceChoiceAndForce(t *testing.T) {
	img := b64(testJPEG(t, 8, 8))
	one := 1
	for _, c := range []struct {
		payload string
		code    Code
	}{
		{`{"request_id":"r1","op":"add","subject_id":"a","images":["` + img + `"],"faces":[{"image":0,"index":1}],"force":true}`, ""},
		{`{"request_id":"r1","op":"add","subject_id":"a","images":["` + img + `"],"faces":[{"image":0,"box":{"x":1,"y":2,"w":30,"h":40}}]}`, ""},
		{`{"request_id":"r1","op":"get","subject_id":"a"}`, ""},
		{`{"request_id":"r1","op":"add","subject_id":"a","images":["` + img + `"],"faces":[{"image":1,"index":0}]}`, CodeBadRequest},
		{`{"request_id":"r1","op":"add","subject_id":"a","images":["` + img + `"],"faces":[{"image":0}]}`, CodeBadRequest},
		{`{"request_id":"r1","op":"add","subject_id":"a","images":["` + img + `"],"faces":[{"image":0,"index":0},{"image":0,"index":1}]}`, CodeBadRequest},
		{`{"request_id":"r1","op":"add","subject_id":"a","images":["` + img + `"],"faces":[{"image":0,"box":{"x":1,"y":2,"w":0,"h":40}}]}`, CodeBadRequest},
		{`{"request_id":"r1","op":"delete","subject_id":"a","force":true}`, CodeBadRequest},
		{`{"request_id":"r1","op":"get"}`, CodeBadRequest},
	} {
		r, err := DecodeEnrollRequest([]byte(c.payload), Limits{})
		if got := codeOrEmpty(err); got != c.code {
			t.Errorf("%.120s: code %q, want %q (%v)", c.payload, got, c.code, err)
		}
		if err == nil {
			sch := schemas(t)
			if verr := validate(t, sch["enroll-request.json"], []byte(c.payload)); verr != nil {
				t.Errorf("%.120s: accepted by the decoder but not by the schema: %v", c.payload, verr)
			}
			_ = r
		}
	}
	base := &EnrollRequest{RequestID: "r1", Op: OpAdd, SubjectID: "a", Images: []string{img}}
	plain := base.CanonicalBody("d")
	if strings.Contains(string(plain), "faces") || strings.Contains(string(plain), "force") {
		t.Fatalf("absent faces/force must not change the signed body:\n%s", plain)
	}
	forced := *base
	forced.Force = true
	chosen := *base
	chosen.Faces = []FaceChoice{{Image: 0, Index: &one}}
	if bytes.Equal(forced.CanonicalBody("d"), plain) || bytes.Equal(chosen.CanonicalBody("d"), plain) || bytes.Equal(chosen.CanonicalBody("d"), forced.CanonicalBody("d")) {
		t.Fatal("force and faces must be signed")
	}
	if !strings.HasSuffix(string(chosen.CanonicalBody("d")), "faces:3:0=1\n") {
		t.Fatalf("faces encoding: %q", chosen.CanonicalBody("d"))
	}
	rep := EnrollReply{RequestID: "r1", Op: OpAdd, Status: ReplyError, Code: CodeSeveralFaces, Time: time.Now(),
		Photos: []PhotoReport{{Index: 0, Verdict: "refused", Reasons: []string{"2 faces"}, Faces: []FaceFound{{Box: Box{X: 1, Y: 2, W: 3, H: 4}, Prominence: 9}}}}}
	get := EnrollReply{RequestID: "r2", Op: OpGet, Status: ReplyOK, Time: time.Now(), Person: &PersonRecord{ID: "a", Created: time.Now(), Updated: time.Now(), Templates: 1,
		Photos: []StoredPhoto{{SHA256: strings.Repeat("ab", 32), Verdict: "borderline", Quality: 0.5, Added: time.Now()}}}}
	dup := EnrollReply{RequestID: "r3", Op: OpAdd, Status: ReplyError, Code: CodeDuplicate, ConflictWith: "b", Time: time.Now()}
	for _, r := range []EnrollReply{rep, get, dup} {
		if err := validate(t, schemas(t)["enroll-reply.json"], mustJSON(t, r)); err != nil {
			t.Errorf("reply %s does not match the schema: %v", r.RequestID, err)
		}
	}
}

func codeOrEmpty(err error) Code {
	if err == nil {
		return ""
	}
	return CodeOf(err)
}
