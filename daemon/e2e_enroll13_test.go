package daemon

import (
	"path/filepath"
	"testing"

	"github.com/facegate/facegate/daemon/mqtt"
)

// Issue 13 through the real daemon: a duplicate person is refused (and
// force is audited), photos of two people under one id are refused, an
// ambiguous photo lists its faces and a chosen one is enrolled, get
// exports what is stored, and a deleted person leaves no template.
func TestE2EEnrollDuplicatesConflictsChoiceExportDelete(t *testing.T) {
	broker := testBroker(t)
	g := startGate(t, broker, filepath.Join(t.TempDir(), "state"), []string{"lfw__Tony_Blair/002.jpg"}, func(c *Config) { c.MQTT.Limits.MaxImageBytes = 1 << 20 })
	blair1 := photo(t, "faces/lfw__Tony_Blair/010.jpg")
	blair2 := photo(t, "faces/lfw__Tony_Blair/003.jpg")
	powell := photo(t, "faces/lfw__Colin_Powell/001.jpg")
	req := func(r *mqtt.EnrollRequest) mqtt.EnrollReply { t.Helper(); return g.request(r, true) }

	if r := req(&mqtt.EnrollRequest{Op: mqtt.OpAdd, SubjectID: "tony", Name: "Tony", Images: []string{blair1}}); r.Status != mqtt.ReplyOK || len(r.Photos) != 1 || r.Photos[0].SHA256 == "" {
		t.Fatalf("add: %+v", r)
	}
	// One person under two ids.
	r := req(&mqtt.EnrollRequest{Op: mqtt.OpAdd, SubjectID: "tony2", Images: []string{blair2}})
	if r.Code != mqtt.CodeDuplicate || r.ConflictWith != "tony" {
		t.Fatalf("duplicate: %+v", r)
	}
	if r := req(&mqtt.EnrollRequest{Op: mqtt.OpAdd, SubjectID: "tony2", Images: []string{blair2}, Force: true}); r.Status != mqtt.ReplyOK || len(r.Warnings) == 0 {
		t.Fatalf("forced duplicate: %+v", r)
	}
	// Two people under one id: in one request, and added later.
	if r := req(&mqtt.EnrollRequest{Op: mqtt.OpAdd, SubjectID: "mixed", Images: []string{powell, blair2}}); r.Code != mqtt.CodeDuplicate && r.Code != mqtt.CodeConflict {
		t.Fatalf("two people in one request: %+v", r)
	}
	if r := req(&mqtt.EnrollRequest{Op: mqtt.OpAddImages, SubjectID: "tony", Images: []string{powell}}); r.Code != mqtt.CodeConflict {
		t.Fatalf("another person's photo added: %+v", r)
	}
	if r := req(&mqtt.EnrollRequest{Op: mqtt.OpAddImages, SubjectID: "tony", Images: []string{blair2}, Force: true}); r.Status != mqtt.ReplyOK {
		t.Fatalf("add_images: %+v", r)
	}
	// An ambiguous photo: refused with its faces, then enrolled by choice.
	two := photo(t, "scenes/frec_two_people.jpg")
	r = req(&mqtt.EnrollRequest{Op: mqtt.OpAdd, SubjectID: "pair", Images: []string{two}})
	if r.Code != mqtt.CodeSeveralFaces || len(r.Photos) != 1 || len(r.Photos[0].Faces) < 2 {
		t.Fatalf("ambiguous photo: %+v", r)
	}
	one := 1
	if r := req(&mqtt.EnrollRequest{Op: mqtt.OpAdd, SubjectID: "pair", Images: []string{two}, Faces: []mqtt.FaceChoice{{Image: 0, Index: &one}}}); r.Status != mqtt.ReplyOK || *r.Photos[0].Chosen != 1 {
		t.Fatalf("chosen face: %+v", r)
	}
	// Export (templates: one per photo and tower), then delete.
	r = req(&mqtt.EnrollRequest{Op: mqtt.OpGet, SubjectID: "tony"})
	if r.Status != mqtt.ReplyOK || r.Person == nil || r.Person.Templates != 2*len(g.cfg.Embedders) || len(r.Person.Photos) != 2 || r.Person.Photos[0].SHA256 == r.Person.Photos[1].SHA256 {
		t.Fatalf("get: %+v", r.Person)
	}
	if r := req(&mqtt.EnrollRequest{Op: mqtt.OpDelete, SubjectID: "tony"}); r.Status != mqtt.ReplyOK {
		t.Fatalf("delete: %+v", r)
	}
	if r := req(&mqtt.EnrollRequest{Op: mqtt.OpGet, SubjectID: "tony"}); r.Code != mqtt.CodeUnknownSubject {
		t.Fatalf("get after delete: %+v", r)
	}
	for _, p := range req(&mqtt.EnrollRequest{Op: mqtt.OpList}).People {
		if p.ID == "tony" {
			t.Fatal("deleted person still listed")
		}
	}
	// With tony gone, his templates are out of the matcher: his photo is a
	// duplicate of tony2 only.
	if r := req(&mqtt.EnrollRequest{Op: mqtt.OpAdd, SubjectID: "tony3", Images: []string{blair1}}); r.ConflictWith != "tony2" {
		t.Fatalf("after delete: %+v", r)
	}
}
