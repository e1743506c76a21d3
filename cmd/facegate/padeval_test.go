package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/image/draw"

	"github.com/facegate/facegate/daemon"
	"github.com/facegate/facegate/eval"
	"github.com/facegate/facegate/infer"
)

// TestPADEvalFolder runs `facegate pad-eval` on a labelled folder made in
// a temp dir: five LFW photos as bona fide, and recaptures composed from
// them (a print on paper on a desk, a phone-like screen with a pixel grid).
// The recaptures test the tool only: they are not attack data.
func TestPADEvalFolder(t *testing.T) {
	models := filepath.Dir(infer.TestModelDir(t, "blazeface-short"))
	infer.TestModelDir(t, "minifasnet-v2")
	infer.TestModelDir(t, "minifasnet-v1se")
	data := infer.TestDataDir(t)
	root := t.TempDir()
	people := []string{"lfw__Anne_ONeil", "lfw__Andy_Griffith", "lfw__Anwar_Ibrahim", "lfw__Colin_Powell", "lfw__George_Clooney"}
	for i, p := range people {
		ents, err := os.ReadDir(filepath.Join(data, "faces", p))
		if err != nil || len(ents) == 0 {
			t.Fatalf("%s: %v", p, err)
		}
		f, err := os.Open(filepath.Join(data, "faces", p, ents[0].Name()))
		if err != nil {
			t.Fatal(err)
		}
		src, _, err := image.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		put(t, filepath.Join(root, "bona_fide", fmt.Sprintf("%d.jpg", i)), fit(src, 640, 480))
		put(t, filepath.Join(root, "attack", "print", fmt.Sprintf("%d.jpg", i)), recapture(src, false))
		put(t, filepath.Join(root, "attack", "screen", fmt.Sprintf("%d.jpg", i)), recapture(src, true))
	}
	out := t.TempDir()
	js, svg := filepath.Join(out, "pad.json"), filepath.Join(out, "pad.svg")
	var stdout bytes.Buffer
	err := cmdPADEval(context.Background(), []string{"-models", models, "-root", root, "-threshold", "0.5", "-json", js, "-plot", svg}, &stdout)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", stdout.String())
	for _, w := range []string{"bona fide presentations: 5", "attack species print", "attack species screen", "presentations 5", "BPCER", "APCER (worst species)", "ACER"} {
		if !strings.Contains(stdout.String(), w) {
			t.Errorf("output lacks %q", w)
		}
	}
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var r eval.PADReport
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Scores) != 15 || r.BonaFide != 5 || len(r.Species) != 2 {
		t.Fatalf("report: %d scores, %d bona fide, %d species", len(r.Scores), r.BonaFide, len(r.Species))
	}
	scored := 0
	for _, s := range r.Scores {
		if s.Err == "" {
			scored++
			if s.Score < 0 || s.Score > 1 {
				t.Errorf("%s: p_real %v", s.Path, s.Score)
			}
		}
	}
	if scored < 14 {
		t.Errorf("only %d of 15 presentations had a face", scored)
	}
	if st, err := os.Stat(svg); err != nil || st.Size() < 1000 {
		t.Errorf("DET plot: %v", err)
	}
	if err := cmdPADEval(context.Background(), []string{"-models", models}, &stdout); err != errUsage {
		t.Errorf("no -root: %v, want usage", err)
	}

	// -crop-context black: every crop at its trained scale, the frame
	// padded with zeros. The black border reads as a print's edge: each
	// bona fide face scores lower than with the daemon's rule.
	js2 := filepath.Join(out, "black.json")
	if err := cmdPADEval(context.Background(), []string{"-models", models, "-root", root, "-crop-context", "black", "-json", js2}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if b, err = os.ReadFile(js2); err != nil {
		t.Fatal(err)
	}
	var black eval.PADReport
	if err := json.Unmarshal(b, &black); err != nil {
		t.Fatal(err)
	}
	fitScore := map[string]float64{}
	for _, s := range r.Scores {
		fitScore[s.Path] = s.Score
	}
	lower := 0
	for _, s := range black.Scores {
		if s.Err == "" && s.Species == "" {
			if s.Score < fitScore[s.Path] {
				lower++
			}
		}
	}
	if lower < 4 {
		t.Errorf("black-padded context lowered %d of 5 bona fide scores, want >= 4", lower)
	}
	if err := cmdPADEval(context.Background(), []string{"-models", models, "-root", root, "-crop-context", "grey"}, io.Discard); err == nil {
		t.Error("-crop-context grey accepted")
	}
	if err := cmdPADEval(context.Background(), []string{"-models", models, "-root", root, "-crop-context", "edge", "-calibrate", "0.05", "-calibration-out", filepath.Join(out, "x.json")}, io.Discard); err == nil {
		t.Error("a calibration written from a padded context")
	}

	// The survey mode: bona fide faces in groups (two "people" folders),
	// every face found (at least the five people; LFW photos show others
	// behind them too), thresholds fitted and written as the
	// daemon's calibration.
	survey := t.TempDir()
	for i := range people {
		b, err := os.ReadFile(filepath.Join(root, "bona_fide", fmt.Sprintf("%d.jpg", i)))
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(survey, "bona_fide", fmt.Sprintf("photo__%d", i%2))
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.jpg", i)), b, 0o644)
	}
	cal := filepath.Join(out, "cal.json")
	stdout.Reset()
	err = cmdPADEval(context.Background(), []string{"-models", models, "-root", survey, "-all-faces", "-quality-gate=false",
		"-calibrate", "0.2", "-calibration-out", cal}, &stdout)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", stdout.String())
	for _, w := range []string{"bona fide presentations: ", "photo__0", "photo__1", "APCER not measured", "half A:", "target BPCER 20.00%"} {
		if !strings.Contains(stdout.String(), w) {
			t.Errorf("survey output lacks %q", w)
		}
	}
	c, err := daemon.LoadPADCalibration(cal)
	if err != nil {
		t.Fatal(err)
	}
	if c.Detector != "blazeface-short" || len(c.Models) != 2 || c.Models[0] != "minifasnet-v2" || len(c.Thresholds) != 1 || c.Thresholds[0].Faces < 5 {
		t.Fatalf("calibration %+v", c)
	}
}

func put(t *testing.T, path string, img image.Image) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := jpeg.Encode(f, img, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
}

// fit scales src to fit w×h, centred on grey.
func fit(src image.Image, w, h int) *image.RGBA {
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(dst, dst.Bounds(), image.NewUniform(color.Gray{100}), image.Point{}, draw.Src)
	b := src.Bounds()
	s := min(float64(w)/float64(b.Dx()), float64(h)/float64(b.Dy()))
	dw, dh := int(float64(b.Dx())*s), int(float64(b.Dy())*s)
	r := image.Rect((w-dw)/2, (h-dh)/2, (w-dw)/2+dw, (h-dh)/2+dh)
	draw.CatmullRom.Scale(dst, r, src, b, draw.Over, nil)
	return dst
}

// recapture composes a print (the photo at 60 % on white paper, faded, on
// a desk) or a screen (the photo in a black bezel, tinted, with a dark
// line every third row like a pixel grid seen close), in a 640x480 frame.
func recapture(src image.Image, screen bool) *image.RGBA {
	frame := image.NewRGBA(image.Rect(0, 0, 640, 480))
	draw.Draw(frame, frame.Bounds(), image.NewUniform(color.RGBA{120, 100, 80, 255}), image.Point{}, draw.Src)
	border, inner := color.RGBA{245, 245, 240, 255}, fit(src, 340, 260)
	if screen {
		border = color.RGBA{10, 10, 12, 255}
	}
	draw.Draw(frame, image.Rect(130, 90, 510, 390), image.NewUniform(border), image.Point{}, draw.Src)
	for y := 0; y < 260; y++ {
		for x := 0; x < 340; x++ {
			c := inner.RGBAAt(x, y)
			r, g, b := float64(c.R), float64(c.G), float64(c.B)
			if screen {
				r, g, b = r*0.9, g*0.95, b*1.05+8
				if y%3 == 0 {
					r, g, b = r*0.8, g*0.8, b*0.8
				}
			} else {
				grey := (r + g + b) / 3
				r, g, b = 40+0.7*(0.7*r+0.3*grey), 40+0.7*(0.7*g+0.3*grey), 35+0.7*(0.7*b+0.3*grey)
			}
			frame.SetRGBA(150+x, 110+y, color.RGBA{clamp(r), clamp(g), clamp(b), 255})
		}
	}
	return frame
}

func clamp(v float64) uint8 { return uint8(max(0, min(255, v+0.5))) }

// TestWritePADCalibration: the thresholds fitted by pad-eval -calibrate
// become a calibration file the daemon loads, rounded down (never a
// higher threshold than fitted, so the BPCER stays at most the target).
func TestWritePADCalibration(t *testing.T) {
	c := &eval.PADCalibration{Presentations: 812, Groups: 17, Points: []eval.PADOperatingPoint{
		{TargetBPCER: 0.05, Threshold: 0.75519}, {TargetBPCER: 0.01, Threshold: 0.38379}}}
	path := filepath.Join(t.TempDir(), "pad.json")
	if err := writePADCalibration(path, c, []string{"/m/minifasnet-v2", "/m/minifasnet-v1se"}, "blazeface-short", ""); err != nil {
		t.Fatal(err)
	}
	cal, err := daemon.LoadPADCalibration(path)
	if err != nil {
		t.Fatal(err)
	}
	th, err := cal.Threshold(0.05, []string{"minifasnet-v2", "minifasnet-v1se"}, "blazeface-short")
	if err != nil || th.PReal != 0.755 || th.Faces != 812 {
		t.Fatalf("%+v %v", th, err)
	}
	if th, _ := cal.Threshold(0.01, []string{"minifasnet-v2", "minifasnet-v1se"}, "blazeface-short"); th.PReal != 0.383 {
		t.Fatalf("1 %%: %+v", th)
	}
	if !strings.Contains(cal.Source, "812 bona fide faces in 17 groups") {
		t.Fatalf("source %q", cal.Source)
	}
}
