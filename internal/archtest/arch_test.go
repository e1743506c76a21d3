package archtest

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/facegate/facegate"

type pkg struct {
	ImportPath string
	Dir        string
	Doc        string
	Deps       []string
	CgoFiles   []string
	GoFiles    []string
	Name       string
}

// list runs `go list -deps=false -json` over the whole module.
func list(t *testing.T, env ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func repoRoot(t *testing.T) string {
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("repo root not found from %s", dir)
	}
	return dir
}

// forbidden maps a package prefix to imports it must never reach, directly
// or through its dependencies. A package follows the longest prefix that
// matches it, so a subpackage with its own entry (eval/pipeline, the bench
// subpackages) has its own rules instead of its parent's.
var forbidden = map[string][]string{
	module + "/capture":         {"github.com/wamuir/graft", module + "/infer", module + "/enroll", module + "/daemon", module + "/eval", module + "/bench"},
	module + "/enroll":          {"github.com/wamuir/graft", module + "/infer", module + "/daemon", module + "/capture", module + "/eval", module + "/bench"},
	module + "/enroll/importer": {"github.com/wamuir/graft", module + "/infer", module + "/capture", module + "/eval", module + "/bench"}, // a client of the gate: daemon/mqtt and daemon/auth, never the daemon
	module + "/daemon/sdnotify": {"github.com/wamuir/graft", module + "/infer", module + "/enroll", module + "/capture"},
	module + "/daemon/auth":     {"github.com/wamuir/graft", module + "/infer", module + "/enroll", module + "/capture"},
	module + "/daemon/mqtt":     {"github.com/wamuir/graft", module + "/infer", module + "/capture"},
	// Offline evaluation: the statistics are pure Go; eval/pipeline is the
	// one part that runs infer's face pipeline.
	module + "/eval":          {"github.com/wamuir/graft", module + "/infer", module + "/daemon", module + "/capture", module + "/bench"},
	module + "/eval/pipeline": {module + "/daemon", module + "/capture", module + "/bench", module + "/enroll"},
	// Benchmarks: the shared helpers and -matching are pure Go; the others
	// are handed an open pipeline or load models, never the daemon.
	module + "/bench":          {"github.com/wamuir/graft", module + "/infer", module + "/daemon", module + "/capture"},
	module + "/bench/matching": {"github.com/wamuir/graft", module + "/infer", module + "/daemon", module + "/capture"},
	module + "/bench/embed":    {module + "/daemon", module + "/capture"},
	module + "/bench/e2e":      {module + "/daemon", module + "/capture"},
	module + "/bench/memory":   {module + "/daemon", module + "/capture"},
	module + "/bench/tracking": {module + "/daemon"},
}

// allowed lists pure-Go subpackages of forbidden trees.
var allowed = map[string]bool{module + "/infer/manifest": true}

// rulesFor is the ban list of the longest forbidden prefix matching path.
func rulesFor(path string) (prefix string, bans []string) {
	for p, b := range forbidden {
		if (path == p || strings.HasPrefix(path, p+"/")) && len(p) > len(prefix) {
			prefix, bans = p, b
		}
	}
	return prefix, bans
}

func TestDependencies(t *testing.T) {
	for _, p := range list(t) {
		prefix, bans := rulesFor(p.ImportPath)
		for _, d := range p.Deps {
			if allowed[d] {
				continue
			}
			for _, ban := range bans {
				if d == ban || strings.HasPrefix(d, ban+"/") {
					t.Errorf("%s depends on %s (forbidden: %s must not reach %s)", p.ImportPath, d, prefix, ban)
				}
			}
		}
	}
}

// consumers maps a tree to the only trees that may depend on it, directly
// or not: measurement (eval, bench) is a leaf the binary wires, never a
// part of the gate.
var consumers = map[string][]string{
	module + "/eval":          {module + "/eval", module + "/bench", module + "/cmd"},
	module + "/eval/pipeline": {module + "/eval/pipeline", module + "/cmd"},
	module + "/bench":         {module + "/bench", module + "/cmd"},
}

func TestConsumers(t *testing.T) {
	under := func(path, prefix string) bool { return path == prefix || strings.HasPrefix(path, prefix+"/") }
	for _, p := range list(t) {
		for tree, who := range consumers {
			ok := false
			for _, w := range who {
				ok = ok || under(p.ImportPath, w)
			}
			if ok {
				continue
			}
			for _, d := range p.Deps {
				if under(d, tree) {
					t.Errorf("%s depends on %s: only %v may depend on %s", p.ImportPath, d, who, tree)
				}
			}
		}
	}
}

// pure lists the packages that must stay pure Go inside the infer tree (and
// the matcher's kernels), with the only non-standard packages they may reach,
// directly or not; a trailing "/" allows a whole tree.
var pure = map[string][]string{
	module + "/infer/imageio": {"golang.org/x/image/"},
	module + "/infer/align":   {"golang.org/x/image/", module + "/infer/imageio", module + "/infer/manifest"},
	module + "/infer/quality": {"golang.org/x/image/", module + "/infer/imageio"},
	module + "/pad/challenge": {"golang.org/x/image/", module + "/infer/imageio", module + "/infer/quality"},
	module + "/infer/track":   {"golang.org/x/image/", module + "/infer/imageio", module + "/infer/detect", module + "/infer/manifest"},
	module + "/internal/vec":  {"golang.org/x/sys/"},
	module + "/decision":      {},
	module + "/site": {"github.com/nats-io/", "github.com/klauspost/compress/", "github.com/minio/highwayhash", "github.com/antithesishq/antithesis-sdk-go/",
		"go.etcd.io/bbolt", "go.etcd.io/bbolt/", "golang.org/x/crypto/", "golang.org/x/sys/", "golang.org/x/time/", module + "/enroll/store", module + "/internal/ident", module + "/daemon/mqtt/outbox"},
}

// TestPureDependencies: each package of pure reaches only the standard
// library and its listed packages (so never TensorFlow or infer's cgo).
func TestPureDependencies(t *testing.T) {
	found := map[string]bool{}
	for _, p := range list(t) {
		allow, ok := pure[p.ImportPath]
		if !ok {
			continue
		}
		found[p.ImportPath] = true
		for _, d := range p.Deps {
			if first, _, _ := strings.Cut(d, "/"); !strings.Contains(first, ".") {
				continue // the standard library
			}
			ok := false
			for _, a := range allow {
				ok = ok || d == a || strings.HasSuffix(a, "/") && strings.HasPrefix(d, a)
			}
			if !ok {
				t.Errorf("%s depends on %s, which it must not (allowed: %v)", p.ImportPath, d, allow)
			}
		}
	}
	for p := range pure {
		if !found[p] {
			t.Errorf("%s is listed in pure but is not in the module", p)
		}
	}
}

// TestCgoOnlyInInfer: only infer/ has cgo files, and everything outside infer
// and the binaries that wire it builds with CGO_ENABLED=0.
func TestCgoOnlyInInfer(t *testing.T) {
	for _, p := range list(t) {
		if len(p.CgoFiles) > 0 && !strings.HasPrefix(p.ImportPath, module+"/infer") {
			t.Errorf("%s has cgo files %v; cgo belongs in infer/", p.ImportPath, p.CgoFiles)
		}
	}
	// A trailing "/..." builds a whole tree, else the one package.
	for _, pattern := range []string{"capture/...", "enroll/...", "infer/manifest/...", "infer/detect/...", "infer/imageio/...", "infer/align/...", "infer/quality/...", "infer/track/...", "pad/challenge/...", "internal/vec/...", "daemon/sdnotify/...", "daemon/auth/...", "daemon/mqtt/...", "eval", "bench", "bench/matching/..."} {
		prefix := strings.TrimSuffix(pattern, "/...")
		dir := filepath.Join(repoRoot(t), prefix)
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		cmd := exec.Command("go", "build", "./"+pattern)
		cmd.Dir = repoRoot(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s does not build without cgo: %v\n%s", prefix, err, out)
		}
	}
}

// TestPackageDocs: every package has a doc.go with a package comment.
func TestPackageDocs(t *testing.T) {
	for _, p := range list(t) {
		if _, err := os.Stat(filepath.Join(p.Dir, "doc.go")); err != nil {
			t.Errorf("%s has no doc.go", p.ImportPath)
		}
		if p.Name != "main" && !strings.HasPrefix(p.Doc, "Package "+p.Name+" ") {
			t.Errorf("%s: package comment %q does not start with %q", p.ImportPath, p.Doc, "Package "+p.Name)
		}
	}
}
