package daemon

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/facegate/facegate/capture"
	"github.com/facegate/facegate/decision"
	"github.com/facegate/facegate/enroll"
	"github.com/facegate/facegate/enroll/store"
	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/imageio"
	"github.com/facegate/facegate/infer/manifest"
	"github.com/facegate/facegate/infer/quality"
	"github.com/facegate/facegate/infer/track"
)

// testPipeline loads the real detector and embedder.
func testPipeline(t *testing.T) *infer.Pipeline {
	t.Helper()
	dm, err := infer.Load(infer.TestModelDir(t, "blazeface-short"), infer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dm.Close() })
	em, err := infer.Load(infer.TestModelDir(t, "dlib-resnet-v1"), infer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { em.Close() })
	det, err := infer.NewDetector(dm, infer.DetectorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	emb, err := infer.NewEmbedder(em)
	if err != nil {
		t.Fatal(err)
	}
	return &infer.Pipeline{Det: det, Emb: emb, PadRetry: 0.25}
}

// testCalibration is a decision calibration with plausible numbers for
// dlib-resnet-v1 and sface-2021dec (impostor statistics of the order LFW
// gives; the real one is models/calibration/decision.json): the engine
// tests check the wiring, not the calibration.
func testCalibration() *decision.Calibration {
	vm := decision.VisitModel{MaxFrames: 4, Samples: 1000, TailExceed: 0.01, TailLogit: -3, TailScale: 1, Margin: 1}
	return &decision.Calibration{Version: decision.Version,
		Towers: []decision.Tower{
			{Name: "dlib", Model: "dlib-resnet-v1", Metric: decision.Euclidean, ImpostorMean: 0.8, ImpostorStd: 0.08},
			{Name: "sface", Model: "sface-2021dec", Metric: decision.Cosine, ImpostorMean: 0.0, ImpostorStd: 0.09},
		},
		Heads: map[string]decision.Head{"dlib+sface": {Bias: -12, Weights: []float64{1.5, 1.5}},
			"dlib": {Bias: -10, Weights: []float64{2}}, "sface": {Bias: -10, Weights: []float64{2}}},
		Visits:     map[string]decision.VisitModel{"dlib+sface": vm, "dlib": vm, "sface": vm},
		Provenance: decision.Provenance{Data: "test", Command: "none", Date: "2026-12-05"}}
}

// testTowers loads the towers named (the first must be the pipeline's).
func testTowers(t *testing.T, p *infer.Pipeline, names ...string) []*Tower {
	t.Helper()
	cal := testCalibration()
	var towers []*Tower
	for i, n := range names {
		emb := p.Emb
		if i > 0 {
			m, err := infer.Load(infer.TestModelDir(t, n), infer.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { m.Close() })
			if emb, err = infer.NewEmbedder(m); err != nil {
				t.Fatal(err)
			}
		}
		man := emb.Model().Manifest()
		sc, err := enroll.NewScorer(man)
		if err != nil {
			t.Fatal(err)
		}
		norm, ok := calTower(cal, man.Name)
		if !ok {
			t.Fatalf("no test calibration for %s", man.Name)
		}
		towers = append(towers, &Tower{Emb: emb, Store: store.Model{Name: man.Name, Version: man.Version}, Scorer: sc, Norm: norm})
	}
	return towers
}

func testGallery(t *testing.T, towers []*Tower) *Gallery {
	t.Helper()
	key, err := store.NewKey("k1", []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "gallery.db"), key, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var gts []GalleryTower
	for _, tw := range towers {
		gts = append(gts, GalleryTower{Model: tw.Store, Scorer: tw.Scorer})
	}
	g, err := OpenGallery(st, gts, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// fileFrames serves JPEG files as camera frames, round robin, n frames,
// in lockstep with the engine: the next frame comes once the previous one
// was analysed, so the test sees every frame decided (a real camera runs
// free and the engine drops what it cannot keep up with).
type fileFrames struct {
	data     [][]byte
	n        int
	seq      uint64
	analysed chan struct{}
}

func (f *fileFrames) Frame() {}

func (f *fileFrames) Inference() { f.analysed <- struct{}{} }

func (f *fileFrames) Next(ctx context.Context) (capture.Frame, error) {
	if f.seq > 0 {
		select {
		case <-f.analysed:
		case <-time.After(30 * time.Second):
			return capture.Frame{}, errors.New("frame not analysed in 30 s")
		}
	}
	if int(f.seq) >= f.n {
		time.Sleep(100 * time.Millisecond) // let the decide stage finish
		return capture.Frame{}, io.EOF
	}
	d := f.data[int(f.seq)%len(f.data)]
	f.seq++
	return capture.Frame{Seq: f.seq, Time: time.Now(), Format: capture.FormatJPEG, Data: d}, nil
}

func newFileFrames(data [][]byte, n int) *fileFrames {
	return &fileFrames{data: data, n: n, analysed: make(chan struct{}, 1)}
}

func readFiles(t *testing.T, paths ...string) [][]byte {
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

type recorded struct {
	mu   sync.Mutex
	decs []Decision
}

func (r *recorded) emit(d Decision, _ *FaceInfo) {
	r.mu.Lock()
	r.decs = append(r.decs, d)
	r.mu.Unlock()
}

// TestEngineGrantsEnrolledAndFlagsImpostor: both towers live, one
// detection and two chips per frame; a person enrolled from one photo is
// granted once per visit, someone else is unknown.
func TestEngineGrantsEnrolledAndFlagsImpostor(t *testing.T) {
	p := testPipeline(t)
	faces := filepath.Join(infer.TestDataDir(t), "faces")
	towers := testTowers(t, p, "dlib-resnet-v1", "sface-2021dec")
	g := testGallery(t, towers)
	fusion, err := NewFusion(testCalibration(), towers)
	if err != nil {
		t.Fatal(err)
	}
	th := manifest.Threshold{FMR: 1e-3, Score: "euclidean", Value: 0.41}
	q := quality.DefaultThresholds()
	q.MinInterOcular = 20 // LFW faces are ~40 px between the eyes
	rule := func() VisitRule {
		r, err := fusion.Rule(g.Len(), 1e-3)
		if err != nil {
			t.Fatal(err)
		}
		return VisitRule{Rule: r, GallerySize: g.Len(), FPIR: 1e-3, Towers: fusion.Key()}
	}

	var rec recorded
	newEngine := func(dec *Decider, src *fileFrames) *Engine {
		e, err := NewEngine(EngineConfig{Pipe: p, Towers: towers, Fusion: fusion, Gallery: g, Decider: dec, Threshold: th, Quality: q, Emit: rec.emit, Progress: src,
			// Every frame a look (the source's frames come faster than the
			// look interval): the rule's frame count is what is tested.
			Visits: NewVisitDecider(VisitDeciderConfig{Visit: VisitConfig{LookInterval: time.Nanosecond}, Cooldown: time.Hour, UnknownInterval: time.Hour, Rule: rule})})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	// Two photos in turn: the box jumps a little, within one visit.
	src := newFileFrames(readFiles(t, filepath.Join(faces, "lfw__Akhmed_Zakayev", "002.jpg"), filepath.Join(faces, "lfw__Akhmed_Zakayev", "003.jpg")), 12)
	e := newEngine(NewDecider(DeciderConfig{AgreeN: 2, AgreeM: 3}), src)

	// Enrol from one photo, through the same path as verification.
	enrolData := readFiles(t, filepath.Join(faces, "lfw__Akhmed_Zakayev", "001.jpg"))
	emb, _, err := e.EmbedEnrollImage(0, enrolData[0], imageio.Limits{}, infer.Auto)
	if err != nil {
		t.Fatal(err)
	}
	if len(emb) != 2 || len(emb[0]) != 128 || len(emb[1]) != 128 {
		t.Fatalf("enrollment embeddings: %d towers", len(emb))
	}
	if err := g.Enroll("akhmed", "Akhmed Zakayev", store.Source{Kind: "test"}, []TowerEmbeddings{emb}); err != nil {
		t.Fatal(err)
	}

	// Other photos of him at the door: one grant, not one per frame.
	if err := e.Run(context.Background(), src); !errors.Is(err, io.EOF) {
		t.Fatalf("Run: %v", err)
	}
	if len(rec.decs) != 1 || rec.decs[0].Verdict != Granted || rec.decs[0].Subject != "akhmed" {
		t.Fatalf("decisions %+v, want one grant for akhmed", rec.decs)
	}
	v := rec.decs[0].Visit
	if v == nil || v.Best == nil || v.Best.Logit < v.Rule.Threshold || v.Rule.GallerySize != 1 || v.Frames < 1 || v.Frames > 4 ||
		len(v.Best.Raw) != 2 || v.Best.Raw[0] > 0.6 || v.Best.Raw[1] < 0.3 {
		t.Fatalf("grant's visit %+v (best %+v)", v, v.Best)
	}

	// Someone else, the same photo repeatedly: unknown after the rule's
	// frames.
	rec.decs = nil
	src = newFileFrames(readFiles(t, filepath.Join(faces, "lfw__Abner_Martinez", "001.jpg")), 6)
	e = newEngine(NewDecider(DeciderConfig{AgreeN: 2, AgreeM: 3}), src)
	if err := e.Run(context.Background(), src); !errors.Is(err, io.EOF) {
		t.Fatalf("Run: %v", err)
	}
	if len(rec.decs) != 1 || rec.decs[0].Verdict != Unknown || rec.decs[0].Visit == nil || rec.decs[0].Visit.Frames != 4 {
		t.Fatalf("decisions %+v, want one unknown after 4 frames", rec.decs)
	}
}

func TestEnrollImageErrors(t *testing.T) {
	p := testPipeline(t)
	data := infer.TestDataDir(t)
	towers := testTowers(t, p, "dlib-resnet-v1")
	e, err := NewEngine(EngineConfig{Pipe: p, Towers: towers, Gallery: testGallery(t, towers), Decider: NewDecider(DeciderConfig{AgreeN: 1, AgreeM: 1}),
		Quality: quality.DefaultThresholds(), Emit: func(Decision, *FaceInfo) {}})
	if err != nil {
		t.Fatal(err)
	}
	group := readFiles(t, filepath.Join(data, "scenes", "faceapi_bbt4.jpg"))[0]
	lfw := readFiles(t, filepath.Join(data, "faces", "lfw__Abel_Pacheco", "001.jpg"))[0]
	blank := encodePNG(t, imageio.NewRGB(200, 200))
	cases := []struct {
		name string
		data []byte
		lim  imageio.Limits
		code string
	}{
		{"corrupt", []byte("\xff\xd8\xff\xe0 not really a jpeg"), imageio.Limits{}, CodeBadFormat},
		{"text", []byte("hello"), imageio.Limits{}, CodeBadFormat},
		{"too large", lfw, imageio.Limits{MaxPixels: 100 * 100}, CodeTooLarge},
		{"no face", blank, imageio.Limits{}, CodeNoFace},
		{"several faces", group, imageio.Limits{}, CodeSeveralFaces},
		{"low quality", lfw, imageio.Limits{}, CodeLowQuality},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.code == CodeLowQuality {
				// Demand a bigger face than this photo has (enrollment
				// photos are judged by the enrollment limits).
				saved := EnrollLimits
				EnrollLimits.Refuse.MinInterOcular, EnrollLimits.Accept.MinInterOcular = 80, 90
				defer func() { EnrollLimits = saved }()
			}
			_, _, err := e.EmbedEnrollImage(3, c.data, c.lim, infer.Auto)
			var ee *EnrollError
			if !errors.As(err, &ee) || ee.Code != c.code || ee.Index != 3 {
				t.Fatalf("err = %v, want code %s for image 3", err, c.code)
			}
		})
	}
}

func encodePNG(t *testing.T, img *imageio.RGB) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestLoadModelsRefusesUntrainedAndUncalibrated: the daemon will not decide
// with random weights unless told to, nor without a threshold calibrated
// for the configured false-match rate.
func TestLoadModelsRefusesUntrainedAndUncalibrated(t *testing.T) {
	dir := filepath.Dir(infer.TestModelDir(t, "dlib-resnet-v1"))
	infer.TestModelDir(t, "vggface2-resnet50")
	cal := testCalibration()
	cal.Towers = append(cal.Towers, decision.Tower{Name: "vgg", Model: "vggface2-resnet50", Metric: decision.Cosine, ImpostorMean: 0.1, ImpostorStd: 0.1})
	calFile := filepath.Join(t.TempDir(), "decision.json")
	if err := cal.Save(calFile); err != nil {
		t.Fatal(err)
	}
	cfg := ModelsConfig{Dir: dir, Detector: "blazeface-short", Embedders: []string{"vggface2-resnet50"}, Calibration: calFile}
	if _, _, _, _, _, err := LoadModels(cfg, 1e-3); !errors.Is(err, ErrUntrained) {
		t.Fatalf("untrained model: err = %v, want ErrUntrained", err)
	}
	cfg.AllowUntrained = true
	if _, _, _, _, _, err := LoadModels(cfg, 1e-3); !errors.Is(err, ErrNotCalibrated) {
		t.Fatalf("untrained, allowed, uncalibrated: err = %v, want ErrNotCalibrated", err)
	}
	cfg = ModelsConfig{Dir: dir, Detector: "blazeface-short", Embedders: []string{"dlib-resnet-v1", "sface-2021dec"}, Calibration: calFile}
	if _, _, _, _, _, err := LoadModels(cfg, 0.05); !errors.Is(err, ErrNotCalibrated) {
		t.Fatalf("FMR 0.05 was never calibrated: err = %v", err)
	}
	det, towers, embs, _, th, err := LoadModels(cfg, 1e-3)
	if err != nil {
		t.Fatal(err)
	}
	det.Close()
	for _, m := range embs {
		m.Close()
	}
	if len(towers) != 2 || towers[0].Name() != "dlib-resnet-v1" || towers[1].Name() != "sface-2021dec" || towers[1].Emb.Size() != 112 {
		t.Fatalf("towers %v", towers)
	}
	if th.FMR != 1e-3 || th.Score != "euclidean" || th.Value <= 0 || th.Value >= 1 || th.Dataset == "" {
		t.Fatalf("threshold %+v", th)
	}
}

// TestEngineTracking: with tracking on, a still face reuses its detection
// for at most MaxFrames frames in a row, still embedded from each frame (the
// same pixels give the same score); a face that moves, and every frame of a
// camera enrollment, is detected; with tracking off every frame is.
func TestEngineTracking(t *testing.T) {
	p := testPipeline(t)
	faces := filepath.Join(infer.TestDataDir(t), "faces")
	towers := testTowers(t, p, "dlib-resnet-v1")
	g := testGallery(t, towers)
	q := quality.DefaultThresholds()
	q.MinInterOcular = 20
	still := readFiles(t, filepath.Join(faces, "lfw__Akhmed_Zakayev", "003.jpg"))
	other := readFiles(t, filepath.Join(faces, "lfw__Akhmed_Zakayev", "001.jpg"))[0]
	emb, _, err := (&Engine{EngineConfig: EngineConfig{Pipe: p, Towers: towers}}).EmbedEnrollImage(0, still[0], imageio.Limits{}, infer.Auto)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Enroll("akhmed", "Akhmed Zakayev", store.Source{Kind: "test"}, []TowerEmbeddings{emb}); err != nil {
		t.Fatal(err)
	}
	run := func(tc track.Config, data [][]byte, n int, collect int) ([]FrameResult, []TowerEmbeddings) {
		t.Helper()
		var mu sync.Mutex
		var got []FrameResult
		src := newFileFrames(data, n)
		// 1:1-only mode with a standing claim: the first tower's score
		// against akhmed on every frame.
		e, err := NewEngine(EngineConfig{Pipe: p, Towers: towers, Gallery: g, Decider: NewDecider(DeciderConfig{AgreeN: 100, AgreeM: 100, Cooldown: time.Hour, UnknownInterval: time.Hour}),
			Threshold: manifest.Threshold{FMR: 1e-3, Score: "euclidean", Value: 0.41}, Quality: q, Emit: func(Decision, *FaceInfo) {}, Progress: src, Track: tc,
			Observe: func(r FrameResult) { mu.Lock(); got = append(got, r); mu.Unlock() }})
		if err != nil {
			t.Fatal(err)
		}
		e.Decider.Claim(Claim{ID: "c", Subject: "akhmed", Deadline: time.Now().Add(time.Hour)}, time.Now())
		var collected []TowerEmbeddings
		done := make(chan struct{})
		go func() {
			defer close(done)
			if collect > 0 {
				if collected, err = e.CollectFaces(context.Background(), collect); err != nil {
					t.Error(err)
				}
			}
		}()
		if collect > 0 {
			for !e.collecting() {
				time.Sleep(time.Millisecond)
			}
		}
		if err := e.Run(context.Background(), src); !errors.Is(err, io.EOF) {
			t.Fatalf("Run: %v", err)
		}
		<-done
		mu.Lock()
		defer mu.Unlock()
		return got, collected
	}
	on := track.Config{Threshold: 8, MaxFrames: 3}
	got, _ := run(on, still, 12, 0)
	if len(got) != 12 {
		t.Fatalf("%d frames observed, want 12", len(got))
	}
	for i, r := range got {
		// detect, 3 tracked, detect, 3 tracked, ...
		if want := i%4 != 0; r.Tracked != want || r.Faces != 1 || !r.Acquired || !r.Accepted || r.Score != got[0].Score {
			t.Fatalf("frame %d: %+v, want tracked %v, one face acquired and accepted at score %.4f", i, r, want, got[0].Score)
		}
	}
	// Two different photos in turn: the face moves every frame.
	got, _ = run(on, [][]byte{still[0], other}, 6, 0)
	for i, r := range got {
		if r.Tracked {
			t.Fatalf("frame %d tracked although the face moved", i)
		}
	}
	// Off: never tracked.
	got, _ = run(track.Config{}, still, 5, 0)
	for i, r := range got {
		if r.Tracked {
			t.Fatalf("frame %d tracked with tracking off", i)
		}
	}
	// A camera enrollment sees only detected frames.
	got, collected := run(on, still, 6, 3)
	if len(collected) != 3 {
		t.Fatalf("collected %d faces, want 3", len(collected))
	}
	for i, r := range got[:3] {
		if r.Tracked {
			t.Fatalf("frame %d tracked during a camera enrollment", i)
		}
	}
}
