package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/facegate/facegate/enroll/eval"
	"github.com/facegate/facegate/infer"
	"github.com/facegate/facegate/infer/imageio"
	"github.com/facegate/facegate/infer/manifest"
)

// modelFlags selects the detector and embedder for the commands that run
// the face pipeline.
type modelFlags struct {
	dir, detector, embedder string
	threads, batch          int
	pad                     float64
	minScore                float64
}

func (m *modelFlags) register(fs *flag.FlagSet) {
	def := os.Getenv(infer.ModelsDirEnv)
	if def == "" {
		def = filepath.Join("build", "models")
	}
	fs.StringVar(&m.dir, "models", def, "folder of exported models")
	fs.StringVar(&m.detector, "detector", "blazeface-short", "detector model: a name under -models or a path")
	fs.StringVar(&m.embedder, "model", "dlib-resnet-v1", "embedding model: a name under -models or a path")
	fs.IntVar(&m.threads, "threads", 0, "TensorFlow intra-op threads (0 = one per core)")
	fs.IntVar(&m.batch, "batch", 16, "faces per embedding batch")
	fs.Float64Var(&m.pad, "pad", 0.25, "when no face is found, pad the image by this fraction of its size and detect again (0 = off)")
	fs.Float64Var(&m.minScore, "min-score", 0.5, "detector score threshold")
}

func (m *modelFlags) path(name string) string {
	if strings.ContainsRune(name, os.PathSeparator) {
		return name
	}
	return filepath.Join(m.dir, name)
}

// openDetector loads the detector only.
func (m *modelFlags) openDetector() (*infer.Pipeline, func(), error) {
	return infer.OpenPipeline(m.path(m.detector), "", m.options(), infer.DetectorConfig{MinScore: m.minScore}, m.pad)
}

// open loads both models; the returned function releases them.
func (m *modelFlags) open() (*infer.Pipeline, func(), error) {
	return infer.OpenPipeline(m.path(m.detector), m.path(m.embedder), m.options(), infer.DetectorConfig{MinScore: m.minScore}, m.pad)
}

func (m *modelFlags) options() infer.Options {
	return infer.Options{IntraOpThreads: m.threads, InterOpThreads: 1}
}

// embedResult is what the pipeline made of one image.
type embedResult struct {
	emb    []float32
	padded bool
	err    error // decode error or infer.ErrNoFace
}

// embedImages runs every image through decode → detect → align → embed,
// batching the embedder. Images that fail keep their error; they are
// failures to acquire, never dropped.
func embedImages(ctx context.Context, p *infer.Pipeline, root string, images []string, batch int, progress *eval.Progress) (map[string]embedResult, error) {
	out := make(map[string]embedResult, len(images))
	type pending struct {
		name string
		img  *imageio.RGB
		face *infer.Face
	}
	var queue []pending
	flush := func() error {
		if len(queue) == 0 {
			return nil
		}
		// One batch: faces of different images, chips side by side.
		chips := make([]float32, len(queue)*p.Emb.ChipLen())
		for i, q := range queue {
			kps := make([][2]float64, len(q.face.Keypoints))
			for k, pt := range q.face.Keypoints {
				kps[k] = [2]float64{pt.X, pt.Y}
			}
			if _, err := p.Emb.Align(q.img, kps, q.face.Names, chips[i*p.Emb.ChipLen():(i+1)*p.Emb.ChipLen()]); err != nil {
				return fmt.Errorf("align %s: %w", q.name, err)
			}
		}
		embs, err := p.Emb.EmbedChips(chips, len(queue))
		if err != nil {
			return err
		}
		for i, q := range queue {
			out[q.name] = embedResult{emb: embs[i], padded: q.face.Padded}
		}
		progress.Add(len(queue))
		queue = queue[:0]
		return nil
	}
	for _, name := range images {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		img, _, err := decodeFile(filepath.Join(root, name))
		if err != nil {
			out[name] = embedResult{err: err}
			progress.Add(1)
			continue
		}
		faces, err := p.Detect(img)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		f, err := infer.Primary(faces, img.W, img.H)
		if err != nil {
			out[name] = embedResult{err: err}
			progress.Add(1)
			continue
		}
		queue = append(queue, pending{name: name, img: img, face: f})
		if len(queue) >= batch {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	progress.Done()
	return out, nil
}

func decodeFile(path string) (*imageio.RGB, imageio.Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, imageio.Info{}, err
	}
	defer f.Close()
	img, info, err := imageio.Decode(f, imageio.Limits{})
	if err != nil {
		return nil, info, fmt.Errorf("decode %s: %w", path, err)
	}
	return img, info, nil
}

func cmdEval(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	var mf modelFlags
	mf.register(fs)
	pairsFile := fs.String("pairs", "", "pairs file: a<TAB>b<TAB>same(1/0), paths relative to -root")
	root := fs.String("root", "", "folder the image paths are relative to")
	folds := fs.Int("folds", 0, "cross-validation folds (0: the file's LFW folds, else 10)")
	jsonOut := fs.String("json", "", "write the report as JSON here")
	plot := fs.String("plot", "", "write ROC and DET curves as SVG here")
	calibrate := fs.Bool("calibrate", false, "write thresholds for FMR 1e-2, 1e-3, 1e-4 (where the data allows) into the model's manifest")
	scoresOut := fs.String("scores", "", "write every pair's score as TSV here (a, b, same, acquired, score): the input of models/train_head.py")
	thresholdsOut := fs.String("thresholds-out", "", "with -calibrate: also write the model's calibration (thresholds and head) as JSON here, e.g. models/calibration/NAME.json")
	impostors := fs.Int("impostors", 0, "with -calibrate: add this many random impostor pairs (different identities of the same source, among the images found) to the calibration only, so low FMR targets (1e-4 needs 10,000) can be measured")
	scoresIn := fs.String("scores-in", "", "evaluate a scores file (as -scores writes, e.g. from a peer system under bench/) instead of running the models")
	plotFrom := fs.String("plot-from", "", "comma-separated report JSON files (from -json): plot their ROC/DET curves together into -plot, then exit")
	label := fs.String("label", "", "with -scores-in: the system's name in the report")
	dataset := fs.String("dataset", "", "name of the data set for the report and calibration (default: the pairs file name)")
	identify := fs.Bool("identify", false, "one-shot identification instead of pairs: enrol K images per person from -root/<identity>/ folders, identify the rest")
	source := fs.String("source", "", "with -identify: only identity folders starting with this prefix (e.g. celeb5__)")
	ks := fs.String("k", "1,3,5", "with -identify: enrolment sizes")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: facegate eval -pairs FILE -root DIR [flags]\n       facegate eval -identify -root DIR [-source PREFIX] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if *plotFrom != "" {
		return plotReports(strings.Split(*plotFrom, ","), *plot)
	}
	if *scoresIn != "" {
		return evalScoresFile(*scoresIn, *label, *dataset, *folds, *jsonOut, *plot, stdout)
	}
	if *root == "" || (*pairsFile == "" && !*identify) {
		fs.Usage()
		return errUsage
	}
	p, closeModels, err := mf.open()
	if err != nil {
		return err
	}
	defer closeModels()
	man := p.Emb.Model().Manifest()
	modelLabel := man.Name + " " + man.Version
	if *identify {
		return runIdentify(ctx, p, *root, *source, *ks, mf.batch, modelLabel, *jsonOut, stdout)
	}

	f, err := os.Open(*pairsFile)
	if err != nil {
		return err
	}
	pairs, err := eval.ParsePairs(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", *pairsFile, err)
	}
	if *dataset == "" {
		*dataset = filepath.Base(*pairsFile)
	}
	images := eval.Images(pairs)
	start := time.Now()
	res, err := embedImages(ctx, p, *root, images, mf.batch, eval.NewProgress(os.Stderr, "embed", len(images)))
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	emb := map[string][]float32{}
	var failed []string
	padded := 0
	for _, im := range images {
		r := res[im]
		if r.err != nil {
			failed = append(failed, im)
			if !errors.Is(r.err, infer.ErrNoFace) {
				slog.Warn("image failed", "image", im, "err", r.err)
			}
			continue
		}
		if r.padded {
			padded++
		}
		emb[im] = r.emb
	}
	kind := string(man.Metric)
	scores, _, err := eval.ScoreEmbeddings(pairs, emb, kind)
	if err != nil {
		return err
	}
	rep, err := eval.Evaluate(pairs, scores, eval.Options{Model: modelLabel, Dataset: *dataset, Date: time.Now().UTC(), Folds: *folds, FailedImages: failed})
	if err != nil {
		return err
	}
	if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "images: %d in %s (%.1f ms/image, detector %s, embedder %s); found only after padding: %d\n",
		len(images), elapsed.Round(time.Millisecond), float64(elapsed.Milliseconds())/float64(len(images)),
		p.Det.Model().Manifest().Name, man.Name, padded)
	if *jsonOut != "" {
		if err := writeFileWith(*jsonOut, rep.WriteJSON); err != nil {
			return err
		}
	}
	if *plot != "" {
		if err := writeFileWith(*plot, rep.WriteROCSVG); err != nil {
			return err
		}
	}
	if *scoresOut != "" {
		if err := writeFileWith(*scoresOut, func(w io.Writer) error { return writeScores(w, pairs, scores, failed) }); err != nil {
			return err
		}
	}
	if *calibrate {
		points, calData := rep.Calibration, *dataset
		if *impostors > 0 {
			extra := randomImpostors(images, emb, *impostors)
			cal := scores
			cal.Results = append(append([]eval.Result(nil), scores.Results...), scoreExtra(extra, emb, kind)...)
			if points, err = eval.Calibrate(cal, eval.CalibrationTargets); err != nil {
				return err
			}
			calData = fmt.Sprintf("%s + %d random impostor pairs", *dataset, len(extra))
			for _, o := range points {
				fmt.Fprintf(stdout, "calibration with extra impostors: FMR %g: %s\n", o.Target, describePoint(o))
			}
		}
		return writeCalibration(p.Emb.Model().Dir(), man, points, rep.Date, calData, *thresholdsOut, stdout)
	}
	return nil
}

func describePoint(o eval.OperatingPoint) string {
	if !o.Enough || o.Threshold == nil || o.FNMR == nil {
		return o.Err().Error()
	}
	return fmt.Sprintf("threshold %.6f, FNMR %.4f, %d impostor pairs", *o.Threshold, *o.FNMR, o.Impostors)
}

// identityOf is the folder of an image path: "lfw__Name/001.jpg" -> source
// "lfw", identity "lfw__Name".
func identityOf(image string) (source, identity string) {
	identity, _, _ = strings.Cut(filepath.ToSlash(image), "/")
	source, _, _ = strings.Cut(identity, "__")
	return source, identity
}

// randomImpostors draws n distinct pairs of acquired images of different
// identities within one source (never across sources, where one person may
// appear under two names), deterministically.
func randomImpostors(images []string, emb map[string][]float32, n int) []eval.Pair {
	bySource := map[string][]string{}
	var sources []string
	for _, im := range images {
		if emb[im] == nil {
			continue
		}
		src, _ := identityOf(im)
		if bySource[src] == nil {
			sources = append(sources, src)
		}
		bySource[src] = append(bySource[src], im)
	}
	sort.Strings(sources)
	rng := rand.New(rand.NewPCG(20261128, uint64(n)))
	seen := map[[2]string]bool{}
	var out []eval.Pair
	for tries := 0; len(out) < n && tries < 20*n && len(sources) > 0; tries++ {
		ims := bySource[sources[rng.IntN(len(sources))]]
		if len(ims) < 2 {
			continue
		}
		a, b := ims[rng.IntN(len(ims))], ims[rng.IntN(len(ims))]
		_, ia := identityOf(a)
		_, ib := identityOf(b)
		if ia == ib {
			continue
		}
		if b < a {
			a, b = b, a
		}
		if seen[[2]string{a, b}] {
			continue
		}
		seen[[2]string{a, b}] = true
		out = append(out, eval.Pair{A: a, B: b, Same: false})
	}
	return out
}

func scoreExtra(pairs []eval.Pair, emb map[string][]float32, kind string) []eval.Result {
	s, _, err := eval.ScoreEmbeddings(pairs, emb, kind)
	if err != nil {
		return nil
	}
	return s.Results
}

// writeScores writes the scores file format: a header naming the score
// kind, one line per pair (a, b, same, acquired, score) and one "#fta" line
// per image in which no face was found.
func writeScores(w io.Writer, pairs []eval.Pair, s eval.Scores, failed []string) error {
	if _, err := fmt.Fprintf(w, "# a\tb\tsame\tacquired\t%s\n", s.Kind); err != nil {
		return err
	}
	for i, p := range pairs {
		r := s.Results[i]
		if _, err := fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%.6f\n", p.A, p.B, b2i(r.Same), b2i(r.Acquired), r.Score); err != nil {
			return err
		}
	}
	for _, im := range failed {
		if _, err := fmt.Fprintf(w, "#fta\t%s\n", im); err != nil {
			return err
		}
	}
	return nil
}

// readScores reads what writeScores writes.
func readScores(r io.Reader) ([]eval.Pair, eval.Scores, []string, error) {
	var pairs []eval.Pair
	var s eval.Scores
	var failed []string
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		f := strings.Split(line, "\t")
		switch {
		case n == 1:
			if len(f) != 5 || f[0] != "# a" {
				return nil, s, nil, fmt.Errorf("scores line 1: want the header \"# a<TAB>b<TAB>same<TAB>acquired<TAB>KIND\"")
			}
			hi, err := eval.HigherIsMatch(f[4])
			if err != nil {
				return nil, s, nil, fmt.Errorf("scores line 1: %w", err)
			}
			s.Kind, s.HigherIsMatch = f[4], hi
		case len(f) == 2 && f[0] == "#fta":
			failed = append(failed, f[1])
		case strings.HasPrefix(line, "#") || line == "":
		case len(f) != 5:
			return nil, s, nil, fmt.Errorf("scores line %d: want 5 tab-separated fields, got %d", n, len(f))
		default:
			var r eval.Result
			var same, acq int
			if _, err := fmt.Sscanf(f[2]+" "+f[3]+" "+f[4], "%d %d %g", &same, &acq, &r.Score); err != nil || same > 1 || acq > 1 || same < 0 || acq < 0 {
				return nil, s, nil, fmt.Errorf("scores line %d: bad same/acquired/score %q", n, f[2:])
			}
			r.Same, r.Acquired = same == 1, acq == 1
			pairs = append(pairs, eval.Pair{A: f[0], B: f[1], Same: r.Same, Line: n})
			s.Results = append(s.Results, r)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, s, nil, err
	}
	if s.Kind == "" {
		return nil, s, nil, fmt.Errorf("scores: empty file")
	}
	return pairs, s, failed, nil
}

// plotReports draws the ROC/DET curves of several reports in one SVG.
func plotReports(files []string, out string) error {
	if out == "" {
		return fmt.Errorf("-plot-from needs -plot OUT.svg")
	}
	var curves []eval.Curve
	var datasets []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var r eval.Report
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		label := r.Model
		if label == "" {
			label = filepath.Base(f)
		}
		curves = append(curves, eval.Curve{Label: fmt.Sprintf("%s (accuracy %.2f%%)", label, 100*r.Accuracy.Mean), ROC: r.ROC})
		if !slices.Contains(datasets, r.Dataset) {
			datasets = append(datasets, r.Dataset)
		}
	}
	return writeFileWith(out, func(w io.Writer) error {
		return eval.WriteROCSVG(w, "facegate eval: "+strings.Join(datasets, ", "), curves...)
	})
}

func evalScoresFile(path, label, dataset string, folds int, jsonOut, plot string, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	pairs, scores, failed, err := readScores(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if dataset == "" {
		dataset = filepath.Base(path)
	}
	rep, err := eval.Evaluate(pairs, scores, eval.Options{Model: label, Dataset: dataset, Date: time.Now().UTC(), Folds: folds, FailedImages: failed})
	if err != nil {
		return err
	}
	if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	if jsonOut != "" {
		if err := writeFileWith(jsonOut, rep.WriteJSON); err != nil {
			return err
		}
	}
	if plot != "" {
		return writeFileWith(plot, rep.WriteROCSVG)
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// writeCalibration stores the calibrated thresholds in the embedder's
// manifest: the metric's own thresholds and, for a Siamese model, the
// equivalent probability thresholds (the head is monotonic in distance).
func writeCalibration(dir string, man *manifest.Manifest, points []eval.OperatingPoint, day, dataset, out string, stdout io.Writer) error {
	date, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return fmt.Errorf("calibrate: report date %q: %w", day, err)
	}
	ths, err := eval.ManifestThresholds(points, string(man.Metric), dataset, date)
	if err != nil {
		return fmt.Errorf("calibrate %s: %w", man.Name, err)
	}
	m, err := manifest.Read(dir)
	if err != nil {
		return err
	}
	for _, t := range ths {
		m.SetThreshold(t)
		if m.Head != nil && t.Score == string(manifest.MetricEuclidean) {
			pt := t
			pt.Score = "probability"
			pt.Value = m.Head.Probability(t.Value)
			m.SetThreshold(pt)
		}
	}
	if err := manifest.Write(dir, m); err != nil {
		return err
	}
	if out != "" {
		// The exporter merges this file into the manifest, so `make models`
		// on a fresh machine reproduces the calibration.
		// Other keys (the head models/train_head.py fitted) are kept.
		cal := map[string]any{}
		if prev, err := os.ReadFile(out); err == nil {
			if err := json.Unmarshal(prev, &cal); err != nil {
				return fmt.Errorf("calibration file %s: %w", out, err)
			}
		}
		cal["model"] = m.Name + " " + m.Version
		cal["thresholds"] = m.Thresholds
		if err := writeFileWith(out, func(w io.Writer) error { return writeJSON(w, cal) }); err != nil {
			return err
		}
	}
	sort.Slice(ths, func(i, j int) bool { return ths[i].FMR > ths[j].FMR })
	for _, t := range ths {
		fmt.Fprintf(stdout, "calibrated %s: FMR %g -> %s <= %.4f (FNMR %.4f, %d impostor pairs)\n", man.Name, t.FMR, t.Score, t.Value, t.FNMR, t.Pairs)
	}
	return nil
}

func writeFileWith(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

func runIdentify(ctx context.Context, p *infer.Pipeline, root, source, ksFlag string, batch int, label, jsonOut string, stdout io.Writer) error {
	var ks []int
	for _, s := range strings.Split(ksFlag, ",") {
		var k int
		if _, err := fmt.Sscanf(strings.TrimSpace(s), "%d", &k); err != nil || k < 1 {
			return fmt.Errorf("-k %q: want a list of positive integers", ksFlag)
		}
		ks = append(ks, k)
	}
	dirs, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	var samples []eval.Sample
	var names []string
	for _, d := range dirs {
		if !d.IsDir() || !strings.HasPrefix(d.Name(), source) {
			continue
		}
		files, err := os.ReadDir(filepath.Join(root, d.Name()))
		if err != nil {
			return err
		}
		for _, f := range files {
			if f.Type().IsRegular() {
				name := filepath.Join(d.Name(), f.Name())
				samples = append(samples, eval.Sample{Identity: d.Name(), Name: name})
				names = append(names, name)
			}
		}
	}
	if len(samples) == 0 {
		return fmt.Errorf("no identity folders under %s starting with %q", root, source)
	}
	res, err := embedImages(ctx, p, root, names, batch, eval.NewProgress(os.Stderr, "embed", len(names)))
	if err != nil {
		return err
	}
	emb := make([][]float32, len(samples))
	for i := range samples {
		if r := res[samples[i].Name]; r.err == nil {
			emb[i] = r.emb
			samples[i].Acquired = true
		}
	}
	man := p.Emb.Model().Manifest()
	kind := string(man.Metric)
	scorer, err := eval.TemplateScorer(emb, kind)
	if err != nil {
		return err
	}
	hi, _ := eval.HigherIsMatch(kind)
	opts := eval.IdentifyOptions{Ks: ks, HigherIsMatch: hi}
	if t, ok := man.ThresholdFor(1e-3, kind); ok {
		v := t.Value
		opts.Threshold = &v
	}
	results, err := eval.Identify(samples, scorer, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "one-shot identification, %s, identities %q under %s\n", label, source+"*", root)
	fmt.Fprintln(stdout, "K  enrolled  probes  FTA  rank-1    unknown probes  FPIR     FNIR     threshold")
	for _, r := range results {
		fpir, fnir, th := "-", "-", "-"
		if r.FPIR != nil {
			fpir = fmt.Sprintf("%.2f%%", 100**r.FPIR)
		}
		if r.FNIR != nil {
			fnir = fmt.Sprintf("%.2f%%", 100**r.FNIR)
		}
		if r.Threshold != nil {
			th = fmt.Sprintf("%.4f (FMR 1e-3)", *r.Threshold)
		}
		fmt.Fprintf(stdout, "%-2d %-9d %-7d %-4d %-9s %-15d %-8s %-8s %s\n", r.K, r.Identities, r.Probes, r.ProbeFTA,
			fmt.Sprintf("%.2f%%", 100*r.Rank1), r.UnknownProbes, fpir, fnir, th)
	}
	if jsonOut != "" {
		return writeFileWith(jsonOut, func(w io.Writer) error {
			return writeJSON(w, map[string]any{"model": label, "root": root, "source": source, "identification": results})
		})
	}
	return nil
}

func writeJSONLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
