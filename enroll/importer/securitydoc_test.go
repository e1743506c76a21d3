package importer

import (
	"encoding/base64"
	"os"
	"strings"
	"testing"

	"github.com/facegate/facegate/daemon/mqtt"
)

// TestSecurityDocOptionalMembers: the body docs/security.md shows for the
// optional enroll members (faces, force: the importer sends force) is the
// one the gate signs and verifies.
func TestSecurityDocOptionalMembers(t *testing.T) {
	doc, err := os.ReadFile("../../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	one := 1
	r := &mqtt.EnrollRequest{RequestID: "req-0002", Op: mqtt.OpAdd, SubjectID: "bob", Name: "Bob",
		Images: []string{base64.StdEncoding.EncodeToString([]byte("photo"))},
		Faces:  []mqtt.FaceChoice{{Image: 0, Index: &one}}, Force: true}
	if body := "```\n" + string(r.CanonicalBody("door-1")) + "```"; !strings.Contains(string(doc), body) {
		t.Errorf("docs/security.md lacks the body with faces and force:\n%s", body)
	}
	r.Faces = []mqtt.FaceChoice{{Image: 0, Box: &mqtt.Box{X: 10, Y: 20, W: 30, H: 40}}}
	body := string(r.CanonicalBody("door-1"))
	line := body[strings.Index(body, "faces:"):strings.Index(body, "force:")]
	if !strings.Contains(string(doc), "`"+strings.TrimSuffix(line, "\n")+"`") {
		t.Errorf("docs/security.md lacks the box choice's line %q", line)
	}
}
