package eval

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeErrata(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "errata.tsv")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const errataHeader = "# comment\naction\tsubject\ttarget\tevidence\n"

func TestReadErrata(t *testing.T) {
	e, err := ReadErrata(writeErrata(t, errataHeader+
		"same\tx__A\tx__B\tone person, two spellings\n"+
		"relabel\tx__C/002.jpg\tx__D\tshows D\n\n"+
		"drop\tx__E/002.jpg\t-\tduplicate of x__F/001.jpg\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Same) != 1 || e.Same[0] != [2]string{"x__A", "x__B"} || e.Relabel["x__C/002.jpg"] != "x__D" || !e.Drop["x__E/002.jpg"] || len(e.Drop) != 1 {
		t.Fatalf("errata %+v", e)
	}
	for name, body := range map[string]string{
		"no evidence":    errataHeader + "same\tx__A\tx__B\t \n",
		"no header":      "same\tx__A\tx__B\tev\n",
		"unknown action": errataHeader + "merge\tx__A\tx__B\tev\n",
		"same on image":  errataHeader + "same\tx__A/001.jpg\tx__B\tev\n",
		"same to itself": errataHeader + "same\tx__A\tx__A\tev\n",
		"relabel folder": errataHeader + "relabel\tx__C\tx__D\tev\n",
		"drop target":    errataHeader + "drop\tx__E/002.jpg\tx__F\tev\n",
		"twice":          errataHeader + "drop\tx__E/002.jpg\t-\tev\nrelabel\tx__E/002.jpg\tx__F\tev\n",
		"three columns":  errataHeader + "drop\tx__E/002.jpg\t-\n",
		"empty":          "# nothing\n",
	} {
		if _, err := ReadErrata(writeErrata(t, body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func oneTower(images ...string) []TowerEmbeddings {
	emb := map[string]Embedding{}
	for i, im := range images {
		v := make([]float32, 4)
		v[i%4] = 1
		emb[im] = Embedding{Vector: v}
	}
	return []TowerEmbeddings{{Name: "t", Metric: KindCosine, Embeddings: emb}}
}

func TestFusionDataErrata(t *testing.T) {
	towers := oneTower("x__A/001.jpg", "x__B/001.jpg", "x__C/001.jpg", "x__C/002.jpg", "x__D/001.jpg", "x__E/001.jpg", "x__E/002.jpg", "x__F/001.jpg")
	e := &Errata{Same: [][2]string{{"x__B", "x__A"}}, Relabel: map[string]string{"x__C/002.jpg": "x__D"}, Drop: map[string]bool{"x__E/002.jpg": true}}
	d, err := newFusionData(towers, [][2]string{{"x__F", "x__E"}}, e)
	if err != nil {
		t.Fatal(err)
	}
	id := func(im string) string {
		k := d.ident[d.index[im]]
		if k < 0 {
			return "dropped"
		}
		return d.names[k]
	}
	want := map[string]string{
		"x__A/001.jpg": "x__A", "x__B/001.jpg": "x__A", // errata "same"
		"x__C/001.jpg": "x__C", "x__C/002.jpg": "x__D", "x__D/001.jpg": "x__D", // relabel
		"x__E/001.jpg": "x__E", "x__F/001.jpg": "x__E", // aliases still apply
		"x__E/002.jpg": "dropped",
	}
	for im, w := range want {
		if got := id(im); got != w {
			t.Errorf("%s: identity %s, want %s", im, got, w)
		}
	}
	if len(d.names) != 4 || d.drop != 1 || len(d.imgs) != 8 {
		t.Errorf("identities %v, dropped %d, images %d", d.names, d.drop, len(d.imgs))
	}
	for k, imgs := range d.byID {
		for _, i := range imgs {
			if d.imgs[i] == "x__E/002.jpg" || d.ident[i] != k {
				t.Errorf("byID[%s] holds %s", d.names[k], d.imgs[i])
			}
		}
	}
	// Without errata the folders are identities (aliases aside).
	d, err = newFusionData(towers, [][2]string{{"x__F", "x__E"}}, nil)
	if err != nil || len(d.names) != 5 || d.drop != 0 {
		t.Fatalf("no errata: %v identities %v dropped %d", err, d.names, d.drop)
	}
	// A correction that names nothing in the data is an error, not a no-op.
	for _, bad := range []*Errata{
		{Same: [][2]string{{"x__A", "x__Z"}}},
		{Relabel: map[string]string{"x__C/009.jpg": "x__D"}},
		{Relabel: map[string]string{"x__C/002.jpg": "x__Z"}},
		{Drop: map[string]bool{"x__E/009.jpg": true}},
	} {
		if _, err := newFusionData(towers, nil, bad); err == nil || !strings.Contains(err.Error(), "not in the data") {
			t.Errorf("errata %+v: err %v", bad, err)
		}
	}
}

// TestRepositoryErrata: eval/lfw-errata.tsv parses, and every correction
// names images and identities of ../shared/data (CI must have the data).
func TestRepositoryErrata(t *testing.T) {
	e, err := ReadErrata("lfw-errata.tsv")
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Same)+len(e.Relabel)+len(e.Drop) == 0 {
		t.Fatal("no corrections")
	}
	root := filepath.Join("..", "..", "shared", "data", "faces")
	if _, err := os.Stat(root); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the face data: %v", err)
		}
		t.Skipf("the face data is not beside the clone: %v", err)
	}
	var images []string
	m, err := filepath.Glob(filepath.Join(root, "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m {
		rel, _ := filepath.Rel(root, p)
		images = append(images, filepath.ToSlash(rel))
	}
	if err := e.check(images); err != nil {
		t.Fatal(err)
	}
}
