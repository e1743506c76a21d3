package importer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/facegate/facegate/daemon/mqtt"
)

// importRows runs an import and returns its summary and report lines by
// subject id (the last line of an id wins).
func importRows(t *testing.T, ctx context.Context, g Gate, rows []Row, o Options) (Summary, map[string]Result, error) {
	t.Helper()
	var buf bytes.Buffer
	o.Report = &buf
	sum, err := Run(ctx, g, rows, o)
	byID := map[string]Result{}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 1<<20)
	lines := 0
	var last string
	for sc.Scan() {
		lines++
		last = sc.Text()
		if strings.HasPrefix(last, `{"summary"`) {
			continue
		}
		var r Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("report line %d: %v: %s", lines, err, sc.Text())
		}
		byID[r.ID+"@"+r.Source] = r
		byID[r.ID] = r
	}
	if !strings.HasPrefix(last, `{"summary"`) {
		t.Errorf("the report does not end with the summary: last line %q", last)
	}
	return sum, byID, err
}

// csvRows writes a CSV and reads it back as validated rows.
func csvRows(t *testing.T, dir, text string) []Row {
	t.Helper()
	p := filepath.Join(dir, "people.csv")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	rows, err := ReadCSV(p)
	if err != nil {
		t.Fatal(err)
	}
	Validate(rows)
	return rows
}

// TestBadRows: every kind of bad row is reported with its code and
// skipped, the others are enrolled, and nothing is sent for a row the
// importer can refuse itself.
func TestBadRows(t *testing.T) {
	dir := t.TempDir()
	g := newFakeGate()
	_, alice := writePhoto(t, filepath.Join(dir, "alice1.jpg"), 1)
	writePhoto(t, filepath.Join(dir, "alice2.png"), 2)
	writePhoto(t, filepath.Join(dir, "bob.jpg"), 3)
	os.WriteFile(filepath.Join(dir, "carol.jpg"), []byte("\xff\xd8\xff\xe0 truncated JPEG"), 0o644)
	os.WriteFile(filepath.Join(dir, "text.jpg"), []byte("hello, not a photo"), 0o644)
	_, dave := writePhoto(t, filepath.Join(dir, "dave.jpg"), 4)
	g.faceless[dave] = true
	writePhoto(t, filepath.Join(dir, "eve1.jpg"), 5)
	writePhoto(t, filepath.Join(dir, "eve2.jpg"), 6)
	_, frank := writePhoto(t, filepath.Join(dir, "frank.jpg"), 7)
	g.faceOf[alice], g.faceOf[frank] = "alice", "alice" // frank's photo shows alice
	for i := 0; i < 6; i++ {
		writePhoto(t, filepath.Join(dir, "many", string(rune('a'+i))+".jpg"), 10+i)
	}
	rows := csvRows(t, dir, `id,name,photo
alice,Alice A,alice1.jpg,alice2.png
bob,Bob,missing.jpg
carol,Carol,carol.jpg
zed,Zed,text.jpg
dave,Dave,dave.jpg
eve,Eve One,eve1.jpg
eve,Eve Two,eve2.jpg
bad id!,Bad,bob.jpg
many,Many,many/a.jpg,many/b.jpg,many/c.jpg,many/d.jpg,many/e.jpg,many/f.jpg
frank,Frank,frank.jpg
nophoto,No Photo
`)
	// One at a time: alice is enrolled before frank, whose photo shows her.
	sum, got, err := importRows(t, context.Background(), g, rows, Options{Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		status Status
		code   string
	}{
		"alice":   {Enrolled, ""},
		"bob":     {Refused, CodeMissingFile},
		"carol":   {Refused, CodeCorruptImage},
		"zed":     {Refused, CodeBadFormat},
		"dave":    {Refused, string(mqtt.CodeNoFace)},
		"eve":     {Refused, CodeDuplicateID},
		"bad id!": {Refused, CodeBadID},
		"many":    {Refused, CodeTooManyPhotos},
		"frank":   {Refused, string(mqtt.CodeDuplicate)},
		"nophoto": {Refused, CodeBadRow},
	}
	for id, w := range want {
		r, ok := got[id]
		if !ok {
			t.Errorf("%s: no report line", id)
			continue
		}
		if r.Status != w.status || r.Code != w.code {
			t.Errorf("%s: %s %s (%s), want %s %s", id, r.Status, r.Code, r.Reason, w.status, w.code)
		}
		if r.Status == Refused && r.Reason == "" {
			t.Errorf("%s: refused without a reason", id)
		}
	}
	for _, src := range []string{"people.csv:7", "people.csv:8"} {
		if r := got["eve@"+filepath.Join(dir, src)]; r.Code != CodeDuplicateID {
			t.Errorf("eve at %s: %+v, want both rows refused as duplicate_id", src, r)
		}
	}
	if r := got["dave"]; r.Photo != filepath.Join(dir, "dave.jpg") || !r.FromGate {
		t.Errorf("dave: photo %q from_gate %v: the gate's per-photo refusal names the file", r.Photo, r.FromGate)
	}
	if r := got["frank"]; r.ConflictWith != "alice" {
		t.Errorf("frank: conflict_with %q, want alice", r.ConflictWith)
	}
	if r := got["bob"]; r.Photo != filepath.Join(dir, "missing.jpg") {
		t.Errorf("bob: photo %q, want the missing file", r.Photo)
	}
	// Only alice, dave and frank reached the gate.
	if n := g.sent(mqtt.OpAdd); n != 3 {
		t.Errorf("%d adds sent, want 3 (alice, dave, frank)", n)
	}
	if len(g.people) != 1 || len(g.people["alice"].photos) != 2 {
		t.Errorf("gallery %v, want alice with 2 photos", g.people)
	}
	if sum.Rows != 11 || sum.Enrolled != 1 || sum.Refused != 10 || sum.Codes[CodeDuplicateID] != 2 {
		t.Errorf("summary %+v", sum)
	}
}

// TestRerunDoesNothing: the same import run again sends nothing, not even
// the rows the gate refused (their refusal is read from the first run's
// report), and says so; -retry-refused sends those again.
func TestRerunDoesNothing(t *testing.T) {
	dir := t.TempDir()
	g := newFakeGate()
	var text strings.Builder
	text.WriteString("id,name,photo\n")
	for i, id := range []string{"p1", "p2", "p3", "p4", "p5"} {
		writePhoto(t, filepath.Join(dir, id+".jpg"), i)
		text.WriteString(id + "," + strings.ToUpper(id) + "," + id + ".jpg\n")
	}
	_, s5 := writePhoto(t, filepath.Join(dir, "p5.jpg"), 5)
	g.faceless[s5] = true
	text.WriteString("p6,P6,missing.jpg\n")
	rows := csvRows(t, dir, text.String())
	report := filepath.Join(dir, "report.jsonl")
	run := func(o Options) Summary {
		t.Helper()
		earlier, err := ReadEarlier(report)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(report)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		o.Report, o.Earlier = f, earlier
		sum, err := Run(context.Background(), g, rows, o)
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	first := run(Options{})
	if first.Enrolled != 4 || first.Refused != 2 || first.NothingToDo() {
		t.Fatalf("first run: %+v", first)
	}
	adds := g.sent(mqtt.OpAdd)
	second := run(Options{})
	if !second.NothingToDo() || second.Skipped != 4 || second.Refused != 2 || g.sent(mqtt.OpAdd) != adds {
		t.Fatalf("second run: %+v, %d adds sent", second, g.sent(mqtt.OpAdd)-adds)
	}
	if s := second.String(); !strings.HasPrefix(s, "nothing to do") {
		t.Errorf("second run says %q", s)
	}
	// The refusal is carried forward, so a third run does nothing either.
	third := run(Options{})
	if !third.NothingToDo() || g.sent(mqtt.OpAdd) != adds {
		t.Errorf("third run: %+v", third)
	}
	retry := run(Options{RetryRefused: true})
	if g.sent(mqtt.OpAdd) != adds+1 || retry.NothingToDo() || retry.Codes[string(mqtt.CodeNoFace)] != 1 {
		t.Errorf("-retry-refused: %+v, %d adds", retry, g.sent(mqtt.OpAdd)-adds)
	}
}

// TestInterruptedAndResumed: an import interrupted with requests in flight
// records their replies, starts nothing new, counts the rows left; the
// rerun enrols exactly those, and nobody is half-enrolled.
func TestInterruptedAndResumed(t *testing.T) {
	dir := t.TempDir()
	g := newFakeGate()
	var text strings.Builder
	want := map[string]int{}
	for i := 0; i < 12; i++ {
		id := "person" + string(rune('a'+i))
		n := 1 + i%3
		text.WriteString(id + "," + id)
		for j := 0; j < n; j++ {
			name := id + string(rune('0'+j)) + ".jpg"
			writePhoto(t, filepath.Join(dir, name), 10*i+j)
			text.WriteString("," + name)
		}
		text.WriteString("\n")
		want[id] = n
	}
	rows := csvRows(t, dir, text.String())
	g.gate, g.started = make(chan struct{}), make(chan struct{}, 100)
	ctx, cancel := context.WithCancel(context.Background())
	type out struct {
		sum Summary
		got map[string]Result
		err error
	}
	done := make(chan out)
	go func() {
		sum, got, err := importRows(t, ctx, g, rows, Options{Concurrency: 2})
		done <- out{sum, got, err}
	}()
	// Let four requests through, then interrupt with two in flight.
	for i := 0; i < 4; i++ {
		<-g.started
		g.gate <- struct{}{}
	}
	<-g.started
	<-g.started
	cancel()
	time.Sleep(50 * time.Millisecond)
	g.gate <- struct{}{}
	g.gate <- struct{}{}
	o := <-done
	if o.err != nil {
		t.Fatal(o.err)
	}
	if o.sum.Enrolled != 6 || o.sum.NotAttempted != 6 || !o.sum.Interrupted || len(o.got) != 2*6 {
		t.Fatalf("interrupted run: %+v, %d report lines", o.sum, len(o.got)/2)
	}
	if !strings.Contains(o.sum.String(), "6 not attempted") {
		t.Errorf("summary %q does not say what is left", o.sum)
	}
	g.mu.Lock()
	for id, p := range g.people {
		if len(p.photos) != want[id] {
			t.Errorf("%s enrolled from %d photos, want %d: half-enrolled", id, len(p.photos), want[id])
		}
	}
	g.mu.Unlock()

	g.gate, g.started = nil, nil
	sum, got, err := importRows(t, context.Background(), g, rows, Options{Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Skipped != 6 || sum.Enrolled != 6 || sum.NotAttempted != 0 || sum.Interrupted {
		t.Errorf("resumed run: %+v", sum)
	}
	for id := range o.got {
		if strings.Contains(id, "@") {
			continue
		}
		if got[id].Status != Skipped {
			t.Errorf("%s, done before the interrupt, is %s on the rerun", id, got[id].Status)
		}
	}
	if len(g.people) != 12 {
		t.Errorf("%d people enrolled after the rerun, want 12", len(g.people))
	}
	for id, p := range g.people {
		if len(p.photos) != want[id] {
			t.Errorf("%s enrolled from %d photos, want %d", id, len(p.photos), want[id])
		}
	}
}

// TestBusyAndLostReplies: busy answers are retried with backoff; an add
// whose reply was lost is sent again, answered subject_exists, and found
// enrolled from the same photos.
func TestBusyAndLostReplies(t *testing.T) {
	dir := t.TempDir()
	g := newFakeGate()
	g.busy, g.drop = 3, "b"
	writePhoto(t, filepath.Join(dir, "a.jpg"), 1)
	writePhoto(t, filepath.Join(dir, "b.jpg"), 2)
	rows := csvRows(t, dir, "a,A,a.jpg\nb,B,b.jpg\n")
	sum, got, err := importRows(t, context.Background(), g, rows, Options{Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Enrolled != 2 || len(g.people) != 2 {
		t.Fatalf("summary %+v, gallery %v", sum, g.people)
	}
	if got["a"].Attempts != 4 {
		t.Errorf("a: %d attempts, want 4 (3 busy)", got["a"].Attempts)
	}
	if r := got["b"]; r.Attempts != 2 || !strings.Contains(r.Reason, "earlier request") {
		t.Errorf("b: %+v, want enrolled by the unanswered first request", r)
	}
	if g.sent(mqtt.OpGet) != 1 {
		t.Errorf("%d gets, want 1", g.sent(mqtt.OpGet))
	}
}

// TestReplace: a person enrolled from other photos is refused unless
// Replace, which sends replace.
func TestReplace(t *testing.T) {
	dir := t.TempDir()
	g := newFakeGate()
	g.people["a"] = fakePerson{name: "A", photos: []string{"00"}}
	writePhoto(t, filepath.Join(dir, "a.jpg"), 1)
	rows := csvRows(t, dir, "a,A,a.jpg\n")
	sum, got, err := importRows(t, context.Background(), g, rows, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got["a"].Code != CodeSubjectExists || g.sent(mqtt.OpAdd)+g.sent(mqtt.OpReplace) != 0 {
		t.Fatalf("without Replace: %+v", got["a"])
	}
	sum, got, err = importRows(t, context.Background(), g, rows, Options{Replace: true})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Enrolled != 1 || got["a"].Op != "replace" || g.people["a"].photos[0] != got["a"].SHA256[0] {
		t.Errorf("with Replace: %+v %+v", sum, got["a"])
	}
}

// TestUnauthorisedAborts: a gate that refuses the key stops the import.
func TestUnauthorisedAborts(t *testing.T) {
	dir := t.TempDir()
	g := newFakeGate()
	g.refuse = mqtt.CodeUnauthorised
	writePhoto(t, filepath.Join(dir, "a.jpg"), 1)
	rows := csvRows(t, dir, "a,A,a.jpg\n")
	if _, err := Run(context.Background(), g, rows, Options{}); err == nil || !strings.Contains(err.Error(), "unauthorised") {
		t.Fatalf("err = %v, want the list refused as unauthorised", err)
	}
	g.refuse = ""
	g.busy = 0
	// Refused on the first add: the rest is not attempted.
	var text strings.Builder
	for i := 0; i < 20; i++ {
		id := "p" + string(rune('a'+i))
		writePhoto(t, filepath.Join(dir, id+".jpg"), i)
		text.WriteString(id + "," + id + "," + id + ".jpg\n")
	}
	rows = csvRows(t, dir, text.String())
	ug := &unauthorisedAdds{fakeGate: g}
	sum, err := Run(context.Background(), ug, rows, Options{Concurrency: 1})
	if !errors.Is(err, ErrAborted) || sum.NotAttempted == 0 {
		t.Errorf("err = %v, summary %+v: want ErrAborted with rows not attempted", err, sum)
	}
}

type unauthorisedAdds struct{ *fakeGate }

func (u *unauthorisedAdds) Do(ctx context.Context, req mqtt.EnrollRequest) (mqtt.EnrollReply, error) {
	if req.Op == mqtt.OpAdd {
		return mqtt.EnrollReply{Status: mqtt.ReplyError, Code: mqtt.CodeUnauthorised, Message: "unauthorised"}, nil
	}
	return u.fakeGate.Do(ctx, req)
}
