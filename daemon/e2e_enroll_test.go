package daemon

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/facegate/facegate/daemon/mqtt"
)

// Issue 15, items 2 and 3 through the real daemon: add never overwrites,
// replace is explicit, and a captured request replayed after a delete and a
// restart does not bring the person back.
func TestE2EEnrollSemanticsAndReplayAfterRestart(t *testing.T) {
	broker := testBroker(t)
	state := filepath.Join(t.TempDir(), "state")
	clip := []string{"lfw__Tony_Blair/002.jpg"}
	g := startGate(t, broker, state, clip, nil)
	a1 := photo(t, "faces/lfw__Tony_Blair/010.jpg")
	a2 := photo(t, "faces/lfw__Tony_Blair/003.jpg")
	b := photo(t, "faces/lfw__Colin_Powell/001.jpg")

	list := func(g *gate) []mqtt.Person {
		t.Helper()
		r := g.request(&mqtt.EnrollRequest{Op: mqtt.OpList}, true)
		if r.Status != mqtt.ReplyOK {
			t.Fatalf("list: %+v", r)
		}
		return r.People
	}
	if r := g.request(&mqtt.EnrollRequest{Op: mqtt.OpAdd, SubjectID: "ow1", Name: "Original", Images: []string{a1}}, true); r.Status != mqtt.ReplyOK {
		t.Fatalf("add: %+v", r)
	}
	if r := g.request(&mqtt.EnrollRequest{Op: mqtt.OpAddImages, SubjectID: "ow1", Images: []string{a2}}, true); r.Status != mqtt.ReplyOK {
		t.Fatalf("add_images: %+v", r)
	}
	// The silent overwrite of the issue: now refused.
	if r := g.request(&mqtt.EnrollRequest{Op: mqtt.OpAdd, SubjectID: "ow1", Name: "Overwriter", Images: []string{b}}, true); r.Status != mqtt.ReplyError || r.Code != mqtt.CodeSubjectExists {
		t.Fatalf("add over an enrolled id: %+v, want subject_exists", r)
	}
	if p := list(g); len(p) != 1 || p[0].Name != "Original" || p[0].Templates != 2 {
		t.Fatalf("after refused add: %+v", p)
	}
	if r := g.request(&mqtt.EnrollRequest{Op: mqtt.OpReplace, SubjectID: "nobody", Name: "X", Images: []string{b}}, true); r.Code != mqtt.CodeUnknownSubject {
		t.Fatalf("replace of an unknown id: %+v", r)
	}
	if r := g.request(&mqtt.EnrollRequest{Op: mqtt.OpReplace, SubjectID: "ow1", Name: "Replaced", Images: []string{a1}}, true); r.Status != mqtt.ReplyOK {
		t.Fatalf("replace: %+v", r)
	}
	if p := list(g); len(p) != 1 || p[0].Name != "Replaced" || p[0].Templates != 1 {
		t.Fatalf("after replace: %+v", p)
	}

	// Capture a signed add, let it run, delete the person, restart, replay.
	captured := &mqtt.EnrollRequest{RequestID: randomHex(8), Op: mqtt.OpAdd, SubjectID: "victim", Name: "Victim", Images: []string{b}}
	captured.Auth, _ = mqtt.Sign(g.key, captured, g.cfg.DeviceID, time.Now())
	payload, _ := json.Marshal(captured)
	if r := g.send(captured.RequestID, payload); r.Status != mqtt.ReplyOK {
		t.Fatalf("captured add: %+v", r)
	}
	if r := g.request(&mqtt.EnrollRequest{Op: mqtt.OpDelete, SubjectID: "victim"}, true); r.Status != mqtt.ReplyOK {
		t.Fatalf("delete: %+v", r)
	}
	g.stop()
	g2 := startGate(t, broker, state, clip, nil)
	if g2.cfg.DeviceID != g.cfg.DeviceID {
		t.Fatalf("restarted gate is %s, was %s", g2.cfg.DeviceID, g.cfg.DeviceID)
	}
	if r := g2.send(captured.RequestID, payload); r.Status != mqtt.ReplyError || r.Code != mqtt.CodeReplay {
		t.Fatalf("replay after restart: %+v, want replay", r)
	}
	for _, p := range list(g2) {
		if p.ID == "victim" {
			t.Fatal("a replayed request brought a deleted person back")
		}
	}
}
