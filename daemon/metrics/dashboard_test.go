package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDashboardNames: every metric docs/grafana/facegate-dashboard.json
// queries is one the gate exposes, so a rename cannot silently empty a
// panel.
func TestDashboardNames(t *testing.T) {
	b, err := os.ReadFile("../../docs/grafana/facegate-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	m := New(Options{})
	m.SetSources(fakeSources())
	m.ModelsLoaded(time.Second, Model{Role: "detector", Name: "blazeface-short", Version: "1", Weights: "pretrained"})
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	exposed := map[string]bool{}
	for _, f := range fams {
		exposed[f.GetName()] = true
	}
	name := regexp.MustCompile(`facegate_[a-z_]+`)
	used := map[string]bool{}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, n := range name.FindAllString(tg.Expr, -1) {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if base := strings.TrimSuffix(n, suffix); base != n && exposed[base] {
						n = base
					}
				}
				used[n] = true
				if !exposed[n] {
					t.Errorf("panel %q queries %s, which the gate does not expose", p.Title, n)
				}
			}
		}
	}
	// The list: each of these is on the dashboard.
	for _, n := range []string{"facegate_camera_frames_in_total", "facegate_frames_dropped_total", "facegate_faces_detected_total",
		"facegate_decisions_total", "facegate_stage_duration_seconds", "facegate_decision_latency_seconds", "facegate_visit_duration_seconds",
		"facegate_gallery_subjects", "facegate_outbox_pending_events", "facegate_mqtt_connected", "facegate_enrollments_total",
		"facegate_model_info", "facegate_feedback_false_grants_total", "facegate_ready"} {
		if !used[n] {
			t.Errorf("the dashboard does not show %s", n)
		}
	}
}
