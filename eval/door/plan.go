package door

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Person is one identity of the scenario: a folder of photos under the
// face data's root.
type Person struct {
	ID     string   // folder name, e.g. lfw__Tony_Blair
	Photos []string // paths relative to the root, sorted
}

// Name is the person's display name (the folder name without its source).
func (p Person) Name() string {
	_, n, ok := strings.Cut(p.ID, "__")
	if !ok {
		n = p.ID
	}
	return strings.ReplaceAll(n, "_", " ")
}

// EnrollPhoto is the one photo a candidate is enrolled from; VisitPhotos
// are the others, never the enrolled one.
func (p Person) EnrollPhoto() string { return p.Photos[0] }

// VisitPhotos are the photos of p's genuine visit: up to max of the photos
// after the enrolled one.
func (p Person) VisitPhotos(max int) []string { return head(p.Photos[1:], max) }

// StrangerPhotos are the photos of a never-enrolled person's visit.
func (p Person) StrangerPhotos(max int) []string { return head(p.Photos, max) }

func head(s []string, n int) []string {
	if len(s) > n {
		s = s[:n]
	}
	return append([]string(nil), s...)
}

// Doubles are LFW identities known to be one person under two names (found
// by the enrollment duplicate check and the fusion evaluation, see
// docs/enrollment.md and docs/accuracy.md) or likely mislabelled. A grant
// of one to the other would be graded as a false grant though it is not,
// so the plan never picks them.
var Doubles = []string{
	"lfw__John_Barnett", "lfw__John_Burnett",
	"lfw__Dai_Chul_Chyung", "lfw__Chyung_Dai-chul",
	"lfw__Hassan_Wirajuda", "lfw__Hasan_Wirayuda",
	"lfw__Cristina_Kirchner", "lfw__Cristina_Fernandez",
	"lfw__Flor_Montulo", "lfw__Nora_Bendijo",
}

// PlanConfig chooses the scenario's people.
type PlanConfig struct {
	Root      string // ../shared/data/faces
	Source    string // folder prefix of the source to draw from, e.g. "lfw__"
	MinPhotos int    // people need at least this many photos (3: one enrolled, two shown)
	Enrolled  int    // enrolment candidates (the run enrols from these until it has Want)
	Strangers int    // never-enrolled visitors
	Seed      uint64
	// Exclude are identities never picked (Doubles and the aliases).
	Exclude []string
}

// Plan is the scenario's people: Candidates to enrol, in order (the run
// goes down the list and replaces a refused one by the next), and
// Strangers, disjoint from them, who are never enrolled.
type Plan struct {
	Candidates []Person
	Strangers  []Person
	// Eligible is how many people of the source had MinPhotos photos.
	Eligible int
}

// NewPlan lists the people of cfg.Source with at least cfg.MinPhotos
// photos under cfg.Root and draws the candidates and strangers at random
// (cfg.Seed), disjoint.
func NewPlan(cfg PlanConfig) (*Plan, error) {
	if cfg.MinPhotos < 2 {
		return nil, fmt.Errorf("door plan: MinPhotos %d: at least 2 (one enrolled, one shown)", cfg.MinPhotos)
	}
	entries, err := os.ReadDir(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("door plan: %w", err)
	}
	skip := map[string]bool{}
	for _, id := range cfg.Exclude {
		skip[id] = true
	}
	var people []Person
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), cfg.Source) || skip[e.Name()] {
			continue
		}
		files, err := os.ReadDir(filepath.Join(cfg.Root, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("door plan: %w", err)
		}
		p := Person{ID: e.Name()}
		for _, f := range files {
			if ext := strings.ToLower(filepath.Ext(f.Name())); !f.IsDir() && (ext == ".jpg" || ext == ".jpeg" || ext == ".png") {
				p.Photos = append(p.Photos, filepath.Join(e.Name(), f.Name()))
			}
		}
		if len(p.Photos) >= cfg.MinPhotos {
			sort.Strings(p.Photos)
			people = append(people, p)
		}
	}
	if need := cfg.Enrolled + cfg.Strangers; len(people) < need {
		return nil, fmt.Errorf("door plan: %d people of %q with %d photos under %s, %d needed", len(people), cfg.Source, cfg.MinPhotos, cfg.Root, need)
	}
	sort.Slice(people, func(i, j int) bool { return people[i].ID < people[j].ID })
	r := rand.New(rand.NewPCG(cfg.Seed, 17))
	r.Shuffle(len(people), func(i, j int) { people[i], people[j] = people[j], people[i] })
	return &Plan{
		Candidates: people[:cfg.Enrolled],
		Strangers:  people[cfg.Enrolled : cfg.Enrolled+cfg.Strangers],
		Eligible:   len(people),
	}, nil
}

// Visit is one visit of the clip: Photos of Person shown one after the
// other; Genuine when Person is enrolled.
type Visit struct {
	Index   int
	Person  string
	Genuine bool
	Photos  []string
	// First and Last are the 1-based sequence numbers of its first and last
	// frame with the face in the clip (capture.Frame.Seq of a file source).
	First, Last uint64
}

// Visits interleaves one genuine visit per enrolled person and one visit
// per stranger in random order (seed), each with up to photos photos.
func Visits(enrolled, strangers []Person, photos int, seed uint64) []Visit {
	var vs []Visit
	for _, p := range enrolled {
		vs = append(vs, Visit{Person: p.ID, Genuine: true, Photos: p.VisitPhotos(photos)})
	}
	for _, p := range strangers {
		vs = append(vs, Visit{Person: p.ID, Photos: p.StrangerPhotos(photos)})
	}
	r := rand.New(rand.NewPCG(seed, 6))
	r.Shuffle(len(vs), func(i, j int) { vs[i], vs[j] = vs[j], vs[i] })
	for i := range vs {
		vs[i].Index = i
	}
	return vs
}
