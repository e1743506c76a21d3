package mqtt

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

const docsDir = "../../docs"

const schemaBase = "https://facegate.example/schemas/"

// schemas compiles every schema in docs/schemas (draft 2020-12, formats
// asserted), keyed by file name.
func schemas(t testing.TB) map[string]*jsonschema.Schema {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(docsDir, "schemas", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no schemas in %s/schemas: %v", docsDir, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		id, _ := doc.(map[string]any)["$id"].(string)
		if id != schemaBase+filepath.Base(f) {
			t.Fatalf("%s: $id %q, want %q", f, id, schemaBase+filepath.Base(f))
		}
		if err := c.AddResource(id, doc); err != nil {
			t.Fatal(err)
		}
	}
	out := map[string]*jsonschema.Schema{}
	for _, f := range files {
		s, err := c.Compile(schemaBase + filepath.Base(f))
		if err != nil {
			t.Fatalf("compile %s: %v", f, err)
		}
		out[filepath.Base(f)] = s
	}
	return out
}

func validate(t *testing.T, s *jsonschema.Schema, payload []byte) error {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
	if err != nil {
		t.Fatalf("payload is not JSON: %v\n%s", err, payload)
	}
	return s.Validate(inst)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fullEvent() Event {
	q := 0.83
	return Event{
		ID: "01JDZQ6Y3K6T1W2F3A4B5C6D7E", Seq: 42, Time: time.Date(2026, 11, 28, 14, 0, 0, 0, time.UTC),
		DeviceID: "door1", Decision: DecisionGranted, Reason: "match", Mode: ModeVerify, ClaimID: "c-17",
		Subject: &Subject{ID: "alice", Name: "Alice Liddell"}, Score: 0.97, Threshold: 0.81, HigherIsMatch: true,
		ThresholdFMR: 1e-4, Face: &Box{X: 210, Y: 96, W: 180, H: 212}, Quality: &q, LatencyMS: 38.5,
		Model: ModelRef{ID: "vggface2-resnet50", Version: "1.0.0"}, Image: "/9j/4AAQ",
	}
}

func fullStats() Stats {
	a := NewAccumulator(time.Date(2026, 11, 28, 13, 0, 0, 0, time.UTC), AccumulatorOptions{})
	a.SetOperatingPoint(0.8, 1e-4, true, ModelRef{ID: "m", Version: "1"})
	e := fullEvent()
	for i := 0; i < 20; i++ {
		e.ID = "e" + string(rune('a'+i))
		e.Score = float64(i) / 20
		e.LatencyMS = float64(10 + i)
		e.Decision = []Decision{DecisionGranted, DecisionDenied, DecisionUnknown}[i%3]
		a.Observe(e)
		a.Frame(e.Time.Add(time.Duration(i)*100*time.Millisecond), i%2 == 1)
	}
	tr, fa := true, false
	a.Feedback(Feedback{EventID: "ea", Correct: &tr})
	a.Feedback(Feedback{EventID: "eb", Correct: &fa})
	g := map[string][][]float32{"a": {{1, 0}, {0.9, 0.1}}, "b": {{0, 1}}}
	a.SetGallery(EstimateGallery(g, cosine, GalleryOptions{Threshold: 0.8, HigherIsMatch: true}))
	s := a.Snapshot(time.Date(2026, 11, 28, 14, 0, 0, 0, time.UTC))
	s.DeviceID = "door1"
	s.Camera = &CameraStats{FPSIn: 15, FPSOut: 11.5, Dropped: 120, Corrupt: 1, DecodeMS: 5.4, Outages: 1, Reconnects: 1, Connected: true}
	return s
}

// TestPayloadsMatchSchemas marshals real payloads from the Go types and
// validates them against docs/schemas.
func TestPayloadsMatchSchemas(t *testing.T) {
	sch := schemas(t)
	minimal := Event{ID: "e1", Seq: 1, Time: time.Now().UTC(), DeviceID: "d", Decision: DecisionUnknown, Mode: ModeIdentify, Model: ModelRef{ID: "m", Version: "v"}}
	n, m, req := 40, 2.7, 1.0
	visitEvent := Event{ID: "e2", Seq: 2, Time: time.Now().UTC(), DeviceID: "d", Decision: DecisionAmbiguous, Reason: "margin", Mode: ModeIdentify,
		Score: 9.1, Threshold: 7.5, HigherIsMatch: true, GallerySize: &n, TargetFPIR: 1e-3, Margin: &m, RequiredMargin: &req,
		Towers:     []TowerScore{{Model: "dlib-resnet-v1", Score: 0.41, HigherIsMatch: false}, {Model: "sface-2021dec", Score: 0.52, HigherIsMatch: true}},
		Candidates: []Candidate{{ID: "ada", Name: "Ada", Score: 9.1}, {ID: "eve", Score: 8.4, Towers: []TowerScore{{Model: "sface-2021dec", Score: 0.5, HigherIsMatch: true}}}},
		Visit:      &Visit{ID: 7, Frames: 3, FramesSeen: 4, DecisionMS: 180, End: "gone"}, Model: ModelRef{ID: "dlib-resnet-v1+sface-2021dec", Version: "dlib+sface"}}
	pscore, pth := 0.21, 0.735
	padEvent := visitEvent
	padEvent.Decision, padEvent.Reason, padEvent.Candidates = DecisionPresentationAttack, "challenge_wrong_direction", nil
	padEvent.Subject = &Subject{ID: "ada"}
	padEvent.PAD = &PAD{Method: "both", Score: &pscore, Threshold: &pth, TargetBPCER: 0.05, Frames: 4, Decision: PADAttack,
		Challenge: &ChallengeOutcome{ID: "0123456789abcdef", Kind: "turn_right", Status: "failed", Reason: "wrong_direction", LatencyMS: 900, Peak: -3.5}}
	idx := 1
	tr := true
	haMsgs, err := haDiscovery(&Config{DeviceID: "door1", HADiscoveryPrefix: "homeassistant", Version: "0.1.0"}, NewTopics("facegate", "door1"))
	if err != nil {
		t.Fatal(err)
	}
	emptyStats := NewAccumulator(time.Now(), AccumulatorOptions{}).Snapshot(time.Now())
	emptyStats.DeviceID = "door1"
	cases := []struct {
		schema  string
		payload []byte
	}{
		{"event.json", mustJSON(t, fullEvent())},
		{"event.json", mustJSON(t, minimal)},
		{"event.json", mustJSON(t, visitEvent)},
		{"event.json", mustJSON(t, padEvent)},
		{"challenge.json", mustJSON(t, Challenge{ID: "0123456789abcdef", DeviceID: "door1", Kind: "turn_left", Issued: time.Now().UTC(), Deadline: time.Now().UTC().Add(5 * time.Second), Visit: 7})},
		{"stats.json", mustJSON(t, fullStats())},
		{"stats.json", mustJSON(t, emptyStats)},
		{"status.json", mustJSON(t, StatusOnline)},
		{"status.json", mustJSON(t, StatusOffline)},
		{"enroll-reply.json", mustJSON(t, EnrollReply{RequestID: "r1", Op: OpList, Status: ReplyOK, People: []Person{{ID: "alice", Name: "Alice", Templates: 3}}, Time: time.Now()})},
		{"enroll-reply.json", mustJSON(t, EnrollReply{RequestID: "r2", Op: OpAdd, Status: ReplyError, Code: CodeNoFace, ImageIndex: &idx, Message: "no face in image 1", Time: time.Now()})},
		{"enroll-reply.json", mustJSON(t, EnrollReply{RequestID: "", Status: ReplyError, Code: CodeBadFormat, Time: time.Now()})},
		{"feedback.json", mustJSON(t, Feedback{EventID: "e1", Correct: &tr, Operator: "guard"})},
		{"claim.json", mustJSON(t, Claim{RequestID: "c1", SubjectID: "alice", TimeoutMS: 5000, Auth: Auth{KeyID: "k", TS: 1, Nonce: "nonce-0123456789", Sig: "abababababababababababababababababababababababababababababababab"}})},
	}
	for _, m := range haMsgs {
		cases = append(cases, struct {
			schema  string
			payload []byte
		}{"ha-discovery.json", m.payload})
	}
	// Every request the decoders accept is valid under the request schemas.
	for _, c := range enrollCases(t) {
		if c.code == "" {
			cases = append(cases, struct {
				schema  string
				payload []byte
			}{"enroll-request.json", []byte(c.payload)})
		}
	}
	for _, c := range claimCases() {
		if c.code == "" {
			cases = append(cases, struct {
				schema  string
				payload []byte
			}{"claim.json", []byte(c.payload)})
		}
	}
	for _, c := range feedbackCases() {
		if c.code == "" {
			cases = append(cases, struct {
				schema  string
				payload []byte
			}{"feedback.json", []byte(c.payload)})
		}
	}
	for i, c := range cases {
		s := sch[c.schema]
		if s == nil {
			t.Fatalf("no schema %s", c.schema)
		}
		if err := validate(t, s, c.payload); err != nil {
			t.Errorf("case %d: payload does not match %s: %v\n%.400s", i, c.schema, err, c.payload)
		}
	}
}

// TestSchemasRejectBadPayloads makes sure the schemas are not vacuous.
func TestSchemasRejectBadPayloads(t *testing.T) {
	sch := schemas(t)
	ev := func(mut func(m map[string]any)) []byte {
		var m map[string]any
		json.Unmarshal(mustJSON(t, fullEvent()), &m)
		mut(m)
		return mustJSON(t, m)
	}
	for name, c := range map[string]struct {
		schema  string
		payload []byte
	}{
		"event bad decision":    {"event.json", ev(func(m map[string]any) { m["decision"] = "maybe" })},
		"event extra field":     {"event.json", ev(func(m map[string]any) { m["password"] = "x" })},
		"event missing seq":     {"event.json", ev(func(m map[string]any) { delete(m, "seq") })},
		"event bad time":        {"event.json", ev(func(m map[string]any) { m["time"] = "yesterday" })},
		"status other":          {"status.json", []byte(`"sleeping"`)},
		"reply error no code":   {"enroll-reply.json", []byte(`{"request_id":"r","status":"error","time":"2026-01-01T00:00:00Z"}`)},
		"reply ok with code":    {"enroll-reply.json", []byte(`{"request_id":"r","status":"ok","code":"busy","time":"2026-01-01T00:00:00Z"}`)},
		"reply unknown code":    {"enroll-reply.json", []byte(`{"request_id":"r","status":"error","code":"oops","time":"2026-01-01T00:00:00Z"}`)},
		"enroll six images":     {"enroll-request.json", []byte(`{"request_id":"r","op":"add","subject_id":"a","images":["a","a","a","a","a","a"]}`)},
		"enroll add no images":  {"enroll-request.json", []byte(`{"request_id":"r","op":"add","subject_id":"a"}`)},
		"enroll sig no key":     {"enroll-request.json", []byte(`{"request_id":"r","op":"list","sig":"abc"}`)},
		"claim slash id":        {"claim.json", []byte(`{"request_id":"a/b","subject_id":"a"}`)},
		"feedback no verdict":   {"feedback.json", []byte(`{"event_id":"e","operator":"o"}`)},
		"pad bad method":        {"event.json", ev(func(m map[string]any) { m["pad"] = map[string]any{"method": "nir", "frames": 1, "decision": "attack"} })},
		"pad no decision":       {"event.json", ev(func(m map[string]any) { m["pad"] = map[string]any{"method": "passive", "frames": 1} })},
		"challenge bad kind":    {"challenge.json", []byte(`{"id":"0123456789abcdef","device_id":"d","kind":"blink","issued":"2026-01-01T00:00:00Z","deadline":"2026-01-01T00:00:05Z","visit":1}`)},
		"challenge no deadline": {"challenge.json", []byte(`{"id":"0123456789abcdef","device_id":"d","kind":"turn_left","issued":"2026-01-01T00:00:00Z","visit":1}`)},
	} {
		if err := validate(t, sch[c.schema], c.payload); err == nil {
			t.Errorf("%s: accepted by %s", name, c.schema)
		}
	}
}

// TestAsyncAPI parses docs/asyncapi.yaml and checks its structure and that
// every $ref resolves: internal pointers to existing nodes, external ones
// to existing schema files.
func TestAsyncAPI(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(docsDir, "asyncapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("asyncapi.yaml: %v", err)
	}
	if doc["asyncapi"] != "3.0.0" {
		t.Fatalf("asyncapi version %v, want 3.0.0", doc["asyncapi"])
	}
	channels, _ := doc["channels"].(map[string]any)
	operations, _ := doc["operations"].(map[string]any)
	if len(channels) == 0 || len(operations) == 0 {
		t.Fatal("no channels or operations")
	}
	topics := NewTopics("{prefix}", "{device_id}")
	wantAddr := map[string]bool{
		topics.Status: false, topics.Events: false, topics.Stats: false, topics.Claim: false,
		topics.EnrollRequest: false, topics.Feedback: false, topics.EnrollReply("{request_id}"): false, topics.Challenge: false,
		"{discovery_prefix}/{component}/{node_id}/{object_id}/config": false,
	}
	for name, v := range channels {
		ch := v.(map[string]any)
		addr, _ := ch["address"].(string)
		if _, ok := wantAddr[addr]; ok {
			wantAddr[addr] = true
		}
		params, _ := ch["parameters"].(map[string]any)
		for _, p := range strings.Split(addr, "/") {
			if strings.HasPrefix(p, "{") {
				if _, ok := params[strings.Trim(p, "{}")]; !ok {
					t.Errorf("channel %s: parameter %s not declared", name, p)
				}
			}
		}
	}
	for addr, seen := range wantAddr {
		if !seen {
			t.Errorf("no channel with address %s", addr)
		}
	}
	for name, v := range operations {
		op := v.(map[string]any)
		if a := op["action"]; a != "send" && a != "receive" {
			t.Errorf("operation %s: action %v", name, a)
		}
	}
	var refs []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if k == "$ref" {
					refs = append(refs, c.(string))
				}
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(doc)
	files := 0
	for _, ref := range refs {
		file, ptr, _ := strings.Cut(ref, "#")
		if file != "" {
			if _, err := os.Stat(filepath.Join(docsDir, file)); err != nil {
				t.Errorf("$ref %s: %v", ref, err)
			}
			files++
			continue
		}
		var node any = doc
		for _, part := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
			m, ok := node.(map[string]any)
			if !ok {
				node = nil
				break
			}
			node = m[part]
		}
		if node == nil {
			t.Errorf("$ref %s does not resolve", ref)
		}
	}
	schemaFiles, _ := filepath.Glob(filepath.Join(docsDir, "schemas", "*.json"))
	if files < len(schemaFiles)-1 { // common.json is referenced by the others
		t.Errorf("asyncapi references %d schema files, %d exist", files, len(schemaFiles))
	}
}
