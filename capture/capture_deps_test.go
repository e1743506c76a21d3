package capture

import (
	"os/exec"
	"strings"
	"testing"
)

// capture/ must stay free of cgo and of the inference stack: frames are
// plain bytes, and the camera side must build with CGO_ENABLED=0 (the qemu
// test runs a static binary).
func TestNoCgoNoInference(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not in PATH")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{len .CgoFiles}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 10 {
		t.Fatalf("go list returned too little:\n%s", out)
	}
	for _, l := range lines {
		pkg, ncgo, _ := strings.Cut(l, " ")
		if strings.Contains(pkg, "facegate/infer") || strings.Contains(pkg, "graft") || strings.Contains(pkg, "tensorflow") {
			t.Errorf("capture depends on %s", pkg)
		}
		if ncgo != "0" && pkg != "runtime/cgo" && !strings.HasPrefix(pkg, "net") && !strings.HasPrefix(pkg, "os/user") {
			t.Errorf("%s uses cgo (%s files)", pkg, ncgo)
		}
	}
}
