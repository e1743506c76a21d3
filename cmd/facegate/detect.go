package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/facegate/facegate/infer"
)

// cmdDetect prints the faces the detector finds, one JSON line per image:
// boxes, scores and named keypoints in image pixels.
func cmdDetect(_ context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("detect", flag.ContinueOnError)
	var mf modelFlags
	mf.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: facegate detect [flags] IMAGE...\n\nPrints one JSON line per image: its faces (box, score, keypoints in image pixels).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	p, closeModels, err := mf.openDetector()
	if err != nil {
		return err
	}
	defer closeModels()
	type kp struct {
		Name string  `json:"name"`
		X    float64 `json:"x"`
		Y    float64 `json:"y"`
	}
	type face struct {
		Box       [4]float64 `json:"box"` // x0, y0, x1, y1
		Score     float64    `json:"score"`
		Keypoints []kp       `json:"keypoints"`
		Padded    bool       `json:"padded,omitempty"`
	}
	type line struct {
		Image  string `json:"image"`
		Width  int    `json:"width"`
		Height int    `json:"height"`
		Faces  []face `json:"faces"`
		Error  string `json:"error,omitempty"`
	}
	enc := json.NewEncoder(stdout)
	var failed int
	for _, path := range fs.Args() {
		out := line{Image: filepath.Clean(path), Faces: []face{}}
		img, err := decodeFile(path)
		if err == nil {
			out.Width, out.Height = img.W, img.H
			var faces []infer.Face
			if faces, err = p.Detect(img); err == nil {
				for _, f := range faces {
					o := face{Box: [4]float64{f.Box.X0, f.Box.Y0, f.Box.X1, f.Box.Y1}, Score: f.Score, Padded: f.Padded}
					for i, k := range f.Keypoints {
						o.Keypoints = append(o.Keypoints, kp{Name: f.Names[i], X: k.X, Y: k.Y})
					}
					out.Faces = append(out.Faces, o)
				}
			}
		}
		if err != nil {
			failed++
			out.Error = err.Error()
		}
		if err := enc.Encode(out); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d images could not be read", failed, fs.NArg())
	}
	return nil
}
