package track

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the package pure Go: its non-standard dependencies
// (transitively) are only those listed, none of them uses cgo, and nothing
// reaches TensorFlow or the cgo part of infer.
func TestDeps(t *testing.T) {
	allowed := []string{
		"github.com/facegate/facegate/infer/detect",
		"github.com/facegate/facegate/infer/imageio",
		"github.com/facegate/facegate/infer/manifest", // through detect
		"golang.org/x/image/",                         // through imageio
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}} {{len .CgoFiles}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	self := "github.com/facegate/facegate/infer/track"
	for _, line := range strings.Fields(strings.ReplaceAll(string(out), " ", "=")) {
		path, cgo, _ := strings.Cut(line, "=")
		if cgo != "0" {
			t.Errorf("%s uses cgo", path)
		}
		ok := path == self
		for _, a := range allowed {
			ok = ok || path == a || strings.HasSuffix(a, "/") && strings.HasPrefix(path, a)
		}
		if !ok {
			t.Errorf("%s depends on %s, which it must not", self, path)
		}
	}
}
