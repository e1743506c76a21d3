package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/facegate/facegate/decision"
	"github.com/facegate/facegate/eval"
	"github.com/facegate/facegate/eval/pipeline"
)

// fusionFlags are the flags of `facegate eval -fusion`: both towers over
// the face data, the fused head, open-set 1:N per visit and the decision
// calibration (issue 17).
type fusionFlags struct {
	on        bool
	towers    string
	cacheDir  string
	lfw       string
	extra     string
	aliases   string
	errata    string
	tail      float64
	aggregate string
	seed      uint64
	outDir    string
	decision  string
	command   string
	trials    int
	maxFrames int
	flip      bool
}

func (f *fusionFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.on, "fusion", false, "fusion and open-set 1:N (issue 17): embed every image under -root with each tower (cached), fit the heads with cross-validation on the LFW folds, evaluate per visit at gallery sizes 100 and 1,000, calibrate the decision")
	fs.StringVar(&f.towers, "towers", "dlib=dlib-resnet-v1,sface=sface-2021dec", "with -fusion: NAME=MODEL,... the towers, by short name and model")
	fs.StringVar(&f.cacheDir, "cache-dir", filepath.Join("build", "eval"), "with -fusion: folder of the embedding caches (one file per model and detector)")
	fs.StringVar(&f.lfw, "lfw-pairs", "", "with -fusion: LFW pairs file (folds 1-5), paths relative to -root")
	fs.StringVar(&f.extra, "extra-pairs", "", "with -fusion: extra pairs file (added to the head's training folds), paths relative to -root")
	fs.StringVar(&f.aliases, "aliases", "", "with -fusion: aliases.tsv (identity pairs that are the same person)")
	fs.StringVar(&f.errata, "errata", "", "with -fusion: errata file (eval/lfw-errata.tsv): label errors of the data corrected when identities are read")
	fs.Float64Var(&f.tail, "tail-exceed", 1e-3, "with -fusion: exceedance where the visit model's exponential tail starts")
	fs.StringVar(&f.aggregate, "aggregate", "max", "with -fusion: how a visit's looks combine, max (the daemon's rule) or mean (offline comparison)")
	fs.Uint64Var(&f.seed, "seed", 17, "with -fusion: seed of the galleries, visits and templates")
	fs.StringVar(&f.outDir, "out-dir", filepath.Join("build", "eval"), "with -fusion: folder of the report (fusion.json, fusion.txt) and plots")
	fs.StringVar(&f.decision, "decision-out", "", "with -fusion: write the decision calibration here (models/calibration/decision.json)")
	fs.StringVar(&f.command, "provenance-command", "", "with -fusion: the command recorded in the calibration's provenance (default: this command line)")
	fs.IntVar(&f.trials, "trials", 10, "with -fusion: random galleries per gallery size and fold")
	fs.IntVar(&f.maxFrames, "max-frames", 3, "with -fusion: frames (photos) per visit, the sequential rule's looks")
	fs.BoolVar(&f.flip, "flip", false, "with -fusion: embed each aligned face and its mirror and sum them (flip test-time augmentation, FACEGATE_EMBED_FLIP); cached apart from the plain embeddings")
}

// runFusion embeds the images with each tower (through the cache) and
// hands the rest to eval.FusionConfig.
func runFusion(ctx context.Context, f *fusionFlags, mf modelFlags, root string, args []string, stdout io.Writer) error {
	images, err := eval.FolderImages(root, "")
	if err != nil {
		return err
	}
	cfg := eval.FusionConfig{Root: root, OutDir: f.outDir, DecisionOut: f.decision, Trials: f.trials, MaxFrames: f.maxFrames, Command: f.command,
		TailExceed: f.tail, Aggregate: decision.Aggregate(f.aggregate), Seed: f.seed,
		Log: func(format string, a ...any) { slog.Info(fmt.Sprintf(format, a...)) }}
	if cfg.Command == "" {
		cfg.Command = "facegate eval " + strings.Join(args, " ")
	}
	for _, spec := range strings.Split(f.towers, ",") {
		name, model, ok := strings.Cut(spec, "=")
		if !ok || name == "" || model == "" {
			return fmt.Errorf("eval -towers: %q is not NAME=MODEL", spec)
		}
		m := mf
		m.embedder = model
		p, closeModels, err := m.open()
		if err != nil {
			return err
		}
		p.Emb.SetFlip(f.flip)
		emb := pipeline.New(p, m.batch)
		cache := filepath.Join(f.cacheDir, eval.EmbCacheName(filepath.Base(model), filepath.Base(m.detector), f.flip))
		res, err := eval.CachedEmbed(ctx, emb, root, images, cache, os.Stderr)
		if err != nil {
			closeModels()
			return fmt.Errorf("tower %s: %w", name, err)
		}
		man := emb.Manifest()
		label := eval.ModelLabel(man)
		if f.flip {
			label += " flip"
		}
		cfg.Towers = append(cfg.Towers, eval.TowerEmbeddings{Name: name, Model: filepath.Base(model), Label: label, Metric: string(man.Metric), Flip: f.flip, Embeddings: res})
		closeModels()
	}
	if cfg.LFW, err = readPairs(f.lfw); err != nil {
		return err
	}
	if cfg.Extra, err = readPairs(f.extra); err != nil {
		return err
	}
	if f.aliases != "" {
		if cfg.Aliases, err = eval.ReadAliases(f.aliases); err != nil {
			return err
		}
	}
	if f.errata != "" {
		if cfg.Errata, err = eval.ReadErrata(f.errata); err != nil {
			return err
		}
	}
	rep, err := cfg.Run(ctx)
	if err != nil {
		return err
	}
	return rep.WriteTable(stdout)
}

func readPairs(path string) ([]eval.Pair, error) {
	if path == "" {
		return nil, nil
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pairs: %w", err)
	}
	defer fh.Close()
	p, err := eval.ParsePairs(fh)
	if err != nil {
		return nil, fmt.Errorf("pairs %s: %w", path, err)
	}
	return p, nil
}
