package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/facegate/facegate/bench"
	"github.com/facegate/facegate/enroll"
	"github.com/facegate/facegate/eval"
	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/imageio"
)

// Config is one end-to-end run over the images of a pairs file.
type Config struct {
	// Pipeline is the open detector and embedder; the caller closes it.
	Pipeline   *infer.Pipeline
	PairsFile  string // a<TAB>b<TAB>same, paths relative to Root
	Root       string
	PairsLimit int // only the images of the first N pairs (the peer's --limit N sees the same); 0: all
	Gallery    int // people in the 1:N gallery each face is matched against
	// PeerTiming is the face_recognition peer's timing JSON
	// (bench/peer_face_recognition.py --timing), compared when it exists.
	PeerTiming string
	Warmup     int // untimed images first (at least 1)
	// Threads and Inter are the pipeline's TensorFlow threads, for the
	// report.
	Threads, Inter int
	Build          bench.Build
}

// Validate rejects a run without its inputs (all but the pipeline, so it
// can run before the models load).
func (cfg Config) Validate() error {
	if cfg.PairsFile == "" || cfg.Root == "" {
		return fmt.Errorf("%w: e2e needs a pairs file and a root folder", bench.ErrConfig)
	}
	if cfg.Gallery < 1 || cfg.PairsLimit < 0 {
		return fmt.Errorf("%w: e2e needs a gallery of at least one person and a pairs limit ≥ 0", bench.ErrConfig)
	}
	return nil
}

// Report is the JSON of -e2e.
type Report struct {
	Kind      string                 `json:"kind"`
	Machine   bench.Machine          `json:"machine"`
	Detector  string                 `json:"detector"`
	Embedder  string                 `json:"embedder"`
	Threads   int                    `json:"intra_op_threads"`
	Inter     int                    `json:"inter_op_threads"`
	PairsFile string                 `json:"pairs_file"`
	Pairs     int                    `json:"pairs"`
	Images    int                    `json:"images"`
	Faces     int                    `json:"faces"`
	FTA       int                    `json:"fta"`
	Padded    int                    `json:"found_after_padding"`
	Gallery   int                    `json:"gallery_people"`
	PerFace   map[string]bench.Stats `json:"per_face_wall_ms"`
	PerFaceCP map[string]bench.Stats `json:"per_face_cpu_ms"`
	RunWallS  float64                `json:"run_wall_s"`
	RunCPUS   float64                `json:"run_cpu_s"`
	Peer      *Peer                  `json:"peer,omitempty"`
}

// Peer sets facegate's per-face time beside the peer's.
type Peer struct {
	File       string  `json:"file"`
	System     string  `json:"system"`
	SameImages bool    `json:"same_images"`
	Images     int     `json:"images"`
	Faces      int     `json:"faces"`
	FTA        int     `json:"fta"`
	WallMean   float64 `json:"per_face_wall_ms_mean"`
	CPUMean    float64 `json:"per_face_cpu_ms_mean"`
	Threads    int     `json:"threads"`
	// SpeedupWall and SpeedupCPU are peer/facegate per face (the target is
	// ≥ 2).
	SpeedupWall float64    `json:"speedup_wall"`
	SpeedupCPU  float64    `json:"speedup_cpu"`
	PeerLoad    [2]any     `json:"peer_loadavg"`
	PeerStages  peerStages `json:"peer_per_face_wall_ms"`
}

type peerStages map[string]bench.Stats

type peerTiming struct {
	System    string `json:"system"`
	PairsFile string `json:"pairs_file"`
	Pairs     int    `json:"pairs"`
	Images    int    `json:"images"`
	Faces     int    `json:"faces"`
	FTA       int    `json:"fta"`
	Settings  struct {
		Threads int `json:"threads"`
	} `json:"settings"`
	Machine struct {
		LoadStart any `json:"loadavg_start"`
		LoadEnd   any `json:"loadavg_end"`
	} `json:"machine"`
	PerFaceWall map[string]bench.Stats `json:"per_face_wall_ms"`
	PerFaceCPU  map[string]bench.Stats `json:"per_face_cpu_ms"`
}

func (cfg Config) Run(ctx context.Context, stdout io.Writer) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Pipeline == nil {
		return nil, fmt.Errorf("%w: e2e needs a pipeline", bench.ErrConfig)
	}
	pairs, err := bench.ReadPairs(cfg.PairsFile, cfg.PairsLimit)
	if err != nil {
		return nil, err
	}
	images := eval.Images(pairs)
	p := cfg.Pipeline
	man := p.Emb.Model().Manifest()
	sc, err := enroll.NewScorer(man)
	if err != nil {
		return nil, err
	}
	gallery, err := bench.RandomGallery(sc, cfg.Gallery, 7)
	if err != nil {
		return nil, err
	}
	abs, _ := filepath.Abs(cfg.PairsFile)
	rep := &Report{Kind: "e2e", Machine: bench.NewMachine(cfg.Build), Detector: p.Det.Model().Manifest().Name, Embedder: man.Name,
		Threads: cfg.Threads, Inter: cfg.Inter, PairsFile: abs, Pairs: len(pairs), Images: len(images), Gallery: cfg.Gallery}
	stages := []string{"decode", "detect", "align", "embed", "match", "total"}
	wall := map[string][]float64{}
	cpu := map[string][]float64{}
	chip := make([]float32, p.Emb.ChipLen())

	one := func(name string, record bool) error {
		var tw [6]time.Time
		var tc [6]time.Duration
		mark := func(i int) { tw[i], tc[i] = time.Now(), bench.CPUTime() }
		mark(0)
		data, err := os.ReadFile(filepath.Join(cfg.Root, name))
		if err != nil {
			return err
		}
		img, _, err := imageio.DecodeBytes(data, imageio.Limits{})
		if err != nil {
			if record {
				rep.FTA++
			}
			return nil
		}
		mark(1)
		faces, err := p.Detect(img)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		f, err := infer.Primary(faces, img.W, img.H)
		if err != nil {
			if record {
				rep.FTA++
			}
			return nil
		}
		mark(2)
		kps := make([]alignPoint, len(f.Keypoints))
		for k, pt := range f.Keypoints {
			kps[k] = alignPoint{pt.X, pt.Y}
		}
		if _, err := p.Emb.Align(img, kps, f.Names, chip); err != nil {
			return fmt.Errorf("align %s: %w", name, err)
		}
		mark(3)
		emb, err := p.Emb.EmbedChips(chip, 1)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		mark(4)
		if _, err := gallery.Identify(emb[0], 5); err != nil {
			return fmt.Errorf("match %s: %w", name, err)
		}
		mark(5)
		if !record {
			return nil
		}
		rep.Faces++
		if f.Padded {
			rep.Padded++
		}
		for i, s := range stages[:5] {
			wall[s] = append(wall[s], bench.MS(tw[i+1].Sub(tw[i])))
			cpu[s] = append(cpu[s], bench.MS(tc[i+1]-tc[i]))
		}
		wall["total"] = append(wall["total"], bench.MS(tw[5].Sub(tw[0])))
		cpu["total"] = append(cpu["total"], bench.MS(tc[5]-tc[0]))
		return nil
	}
	// Warm-up: TensorFlow's first runs allocate and pick kernels.
	for range max(cfg.Warmup, 1) {
		if err := one(images[0], false); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(stdout, "facegate bench -e2e: %s + %s, intra-op threads %d, inter-op %d, %d images of %d pairs of %s, gallery %d\n",
		rep.Detector, rep.Embedder, cfg.Threads, cfg.Inter, len(images), len(pairs), filepath.Base(cfg.PairsFile), cfg.Gallery)
	w0, c0 := time.Now(), bench.CPUTime()
	for _, name := range images {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := one(name, true); err != nil {
			return nil, err
		}
	}
	rep.RunWallS = bench.Round3(time.Since(w0).Seconds())
	rep.RunCPUS = bench.Round3((bench.CPUTime() - c0).Seconds())
	rep.PerFace, rep.PerFaceCP = map[string]bench.Stats{}, map[string]bench.Stats{}
	for _, s := range stages {
		rep.PerFace[s] = bench.StatsOf(wall[s])
		rep.PerFaceCP[s] = bench.StatsOf(cpu[s])
	}
	rep.Machine.Finish()
	fmt.Fprintf(stdout, "%d faces, %d without a face, %d found after padding; %.1f s wall, %.1f s CPU\n",
		rep.Faces, rep.FTA, rep.Padded, rep.RunWallS, rep.RunCPUS)
	fmt.Fprintf(stdout, "%-8s %28s %28s\n", "stage", "wall ms/face mean p50 p95", "cpu ms/face mean p50 p95")
	for _, s := range stages {
		w, c := rep.PerFace[s], rep.PerFaceCP[s]
		fmt.Fprintf(stdout, "%-8s %9.2f %8.2f %9.2f %9.2f %8.2f %9.2f\n", s, w.Mean, w.P50, w.P95, c.Mean, c.P50, c.P95)
	}
	if cfg.PeerTiming != "" {
		pc, err := comparePeer(cfg.PeerTiming, rep)
		switch {
		case errors.Is(err, os.ErrNotExist):
			fmt.Fprintf(stdout, "peer: no timing file %s (run `make peer-lfw` or bench-e2e-peer)\n", cfg.PeerTiming)
		case err != nil:
			return nil, err
		default:
			rep.Peer = pc
			same := "the same images"
			if !pc.SameImages {
				same = fmt.Sprintf("NOT the same images: the peer ran %d images", pc.Images)
			}
			fmt.Fprintf(stdout, "peer %s (%s, %d thread(s)): %.2f ms/face wall, %.2f CPU; facegate is %.2fx faster (wall), %.2fx (CPU)\n",
				pc.System, same, pc.Threads, pc.WallMean, pc.CPUMean, pc.SpeedupWall, pc.SpeedupCPU)
		}
	}
	fmt.Fprintf(stdout, "machine: %s\n", rep.Machine.Describe())
	return rep, nil
}

type alignPoint = [2]float64

func comparePeer(path string, rep *Report) (*Peer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pt peerTiming
	if err := json.Unmarshal(b, &pt); err != nil {
		return nil, fmt.Errorf("peer timing %s: %w", path, err)
	}
	wall, cpu := pt.PerFaceWall["total"], pt.PerFaceCPU["total"]
	if wall.N == 0 || wall.Mean <= 0 {
		return nil, fmt.Errorf("peer timing %s: no per-face total", path)
	}
	pc := &Peer{
		File: path, System: pt.System, Images: pt.Images, Faces: pt.Faces, FTA: pt.FTA,
		SameImages: pt.PairsFile == rep.PairsFile && pt.Pairs == rep.Pairs && pt.Images == rep.Images,
		WallMean:   wall.Mean, CPUMean: cpu.Mean, Threads: pt.Settings.Threads,
		SpeedupWall: bench.Ratio(wall.Mean, rep.PerFace["total"].Mean),
		SpeedupCPU:  bench.Ratio(cpu.Mean, rep.PerFaceCP["total"].Mean),
		PeerLoad:    [2]any{pt.Machine.LoadStart, pt.Machine.LoadEnd},
		PeerStages:  pt.PerFaceWall,
	}
	return pc, nil
}
