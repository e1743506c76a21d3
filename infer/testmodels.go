package infer

import (
	"os"
	"path/filepath"
	"testing"
)

// ModelsDirEnv names the folder holding exported models (`make models`
// writes build/models and the Makefile exports this variable).
const ModelsDirEnv = "FACEGATE_MODELS_DIR"

// TestModelDir returns the folder of the exported model name for a test.
// When the model is missing it skips the test with one line, except under
// CI=true, where a missing model fails the test: CI must run every test.
func TestModelDir(t testing.TB, name string) string {
	t.Helper()
	root := os.Getenv(ModelsDirEnv)
	if root == "" {
		root = filepath.Join(repoRoot(), "build", "models")
	}
	dir := filepath.Join(root, name)
	if _, err := os.Stat(filepath.Join(dir, "saved_model.pb")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("model %s missing under CI=true (run `make models`): %v", name, err)
		}
		t.Skipf("model %s not exported (run `make models`): %v", name, err)
	}
	return dir
}

// repoRoot walks up from the working directory to the folder with go.mod.
func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return "."
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// DataDirEnv overrides where the shared face data lives (default: the
// repository's sibling ../shared/data, as on developer machines and in CI).
const DataDirEnv = "FACEGATE_DATA_DIR"

// TestDataDir returns the shared face data folder for a test: skipped with
// one line when it is missing, except under CI=true, where it fails.
func TestDataDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(DataDirEnv)
	if dir == "" {
		dir = filepath.Join(repoRoot(), "..", "shared", "data")
	}
	if _, err := os.Stat(filepath.Join(dir, "README.md")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("face data missing under CI=true: %v", err)
		}
		t.Skipf("face data not found at %s (set %s): %v", dir, DataDirEnv, err)
	}
	return dir
}
