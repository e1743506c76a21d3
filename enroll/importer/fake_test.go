package importer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/facegate/facegate/daemon/mqtt"
)

// fakeGate is an in-memory gate with the daemon's enrollment rules: add
// refuses an enrolled id (subject_exists), a photo without a face
// (no_face, by its sha256) and a photo of someone enrolled under another
// id (duplicate: the test says whose face each photo shows); a request is
// applied whole or not at all.
type fakeGate struct {
	mu       sync.Mutex
	people   map[string]fakePerson
	faceless map[string]bool   // sha256 of photos without a face
	faceOf   map[string]string // sha256 -> whose face it shows
	busy     int               // answer busy to this many add/replace requests
	drop     string            // apply the first add of this id but lose its reply
	gate     chan struct{}     // when set, add/replace wait for a token
	started  chan struct{}     // when set, told of each add/replace as it starts
	reqs     []mqtt.EnrollRequest
	refuse   mqtt.Code // when set, every request is refused with it
}

type fakePerson struct {
	name   string
	photos []string
}

func newFakeGate() *fakeGate {
	return &fakeGate{people: map[string]fakePerson{}, faceless: map[string]bool{}, faceOf: map[string]string{}}
}

func (g *fakeGate) Do(ctx context.Context, req mqtt.EnrollRequest) (mqtt.EnrollReply, error) {
	g.mu.Lock()
	g.reqs = append(g.reqs, req)
	gate, started := g.gate, g.started
	g.mu.Unlock()
	if g.refuse != "" {
		return mqtt.EnrollReply{Op: req.Op, Status: mqtt.ReplyError, Code: g.refuse, Message: string(g.refuse)}, nil
	}
	if req.Op == mqtt.OpAdd || req.Op == mqtt.OpReplace {
		if started != nil {
			started <- struct{}{}
		}
		if gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
				return mqtt.EnrollReply{}, ctx.Err()
			}
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	rep := mqtt.EnrollReply{Op: req.Op, SubjectID: req.SubjectID, Status: mqtt.ReplyOK}
	fail := func(code mqtt.Code, index int, msg string) (mqtt.EnrollReply, error) {
		rep.Status, rep.Code, rep.Message = mqtt.ReplyError, code, msg
		if index >= 0 {
			rep.ImageIndex = &index
		}
		return rep, nil
	}
	switch req.Op {
	case mqtt.OpList:
		for id, p := range g.people {
			rep.People = append(rep.People, mqtt.Person{ID: id, Name: p.name, Templates: len(p.photos), Photos: p.photos})
		}
	case mqtt.OpGet:
		p, ok := g.people[req.SubjectID]
		if !ok {
			return fail(mqtt.CodeUnknownSubject, -1, "no such subject")
		}
		rep.Person = &mqtt.PersonRecord{ID: req.SubjectID, Name: p.name, Templates: len(p.photos)}
		for _, s := range p.photos {
			rep.Person.Photos = append(rep.Person.Photos, mqtt.StoredPhoto{SHA256: s})
		}
	case mqtt.OpDelete:
		if _, ok := g.people[req.SubjectID]; !ok {
			return fail(mqtt.CodeUnknownSubject, -1, "no such subject")
		}
		delete(g.people, req.SubjectID)
	case mqtt.OpAdd, mqtt.OpReplace:
		if g.busy > 0 {
			g.busy--
			return fail(mqtt.CodeBusy, -1, "enrollment queue full, retry later")
		}
		_, has := g.people[req.SubjectID]
		switch {
		case has && req.Op == mqtt.OpAdd:
			return fail(mqtt.CodeSubjectExists, -1, "subject "+req.SubjectID+" is already enrolled")
		case !has && req.Op == mqtt.OpReplace:
			return fail(mqtt.CodeUnknownSubject, -1, "no such subject")
		}
		var sums []string
		for i, b64 := range req.Images {
			b, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				return fail(mqtt.CodeBadRequest, i, err.Error())
			}
			sum := sha256.Sum256(b)
			s := hex.EncodeToString(sum[:])
			if g.faceless[s] {
				return fail(mqtt.CodeNoFace, i, "no face found: use a photo showing the whole face")
			}
			sums = append(sums, s)
		}
		for i, s := range sums {
			for id, p := range g.people {
				for _, q := range p.photos {
					if id != req.SubjectID && g.faceOf[s] != "" && g.faceOf[s] == g.faceOf[q] && !req.Force {
						r, err := fail(mqtt.CodeDuplicate, i, fmt.Sprintf("photo %d matches enrolled person %s", i, id))
						r.ConflictWith = id
						return r, err
					}
				}
			}
		}
		g.people[req.SubjectID] = fakePerson{name: req.Name, photos: sums}
		rep.Templates = len(sums)
		if req.Op == mqtt.OpAdd && g.drop == req.SubjectID {
			g.drop = ""
			return mqtt.EnrollReply{}, fmt.Errorf("%w: dropped by the test", ErrNoReply)
		}
	default:
		return fail(mqtt.CodeBadRequest, -1, "unexpected op "+string(req.Op))
	}
	return rep, nil
}

// sent counts the requests of op received.
func (g *fakeGate) sent(op mqtt.EnrollOp) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, r := range g.reqs {
		if r.Op == op {
			n++
		}
	}
	return n
}

// writePhoto writes a small photo, distinct for each seed, as JPEG or PNG
// (by the extension) and returns its path and sha256.
func writePhoto(t *testing.T, path string, seed int) (string, string) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 48, 40))
	for y := 0; y < 40; y++ {
		for x := 0; x < 48; x++ {
			img.Set(x, y, color.RGBA{uint8(seed * 37), uint8(x * 5), uint8(y*6 + seed), 255})
		}
	}
	var buf bytes.Buffer
	var err error
	if filepath.Ext(path) == ".png" {
		err = png.Encode(&buf, img)
	} else {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return path, hex.EncodeToString(sum[:])
}
