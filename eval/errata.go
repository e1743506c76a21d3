package eval

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// Errata are label errors in the shared face data (which is read-only),
// corrected when the evaluation reads identities, on top of aliases.tsv:
// identity folders that show the same person, single images filed under
// the wrong identity, and images to leave out (a duplicate of another
// identity's photograph, or a person other than the folder's).
type Errata struct {
	// Same are identity folders that show the same person.
	Same [][2]string
	// Relabel maps an image (folder/file) to the identity it shows.
	Relabel map[string]string
	// Drop are images left out.
	Drop map[string]bool
}

// Errata actions, the first column of the errata file.
const (
	ErrataSame    = "same"
	ErrataRelabel = "relabel"
	ErrataDrop    = "drop"
)

// ReadErrata reads an errata file: a header line "action subject target
// evidence", then one tab-separated line per correction:
//
//	same     IDENTITY  IDENTITY  evidence   (two folders, one person)
//	relabel  IMAGE     IDENTITY  evidence   (the image shows IDENTITY)
//	drop     IMAGE     -         evidence   (the image is left out)
//
// Lines starting with '#' and blank lines are skipped. Every correction
// must state its evidence.
func ReadErrata(path string) (*Errata, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("errata: %w", err)
	}
	defer f.Close()
	e := &Errata{Relabel: map[string]string{}, Drop: map[string]bool{}}
	sc := bufio.NewScanner(f)
	header := false
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if !header {
			if len(cols) != 4 || cols[0] != "action" || cols[3] != "evidence" {
				return nil, fmt.Errorf("errata %s:%d: header must be action, subject, target, evidence", path, n)
			}
			header = true
			continue
		}
		if len(cols) != 4 {
			return nil, fmt.Errorf("errata %s:%d: %d columns, want 4", path, n, len(cols))
		}
		act, subj, target, evidence := cols[0], cols[1], cols[2], strings.TrimSpace(cols[3])
		if evidence == "" {
			return nil, fmt.Errorf("errata %s:%d: no evidence", path, n)
		}
		isImage := func(s string) bool {
			return strings.Count(s, "/") == 1 && !strings.HasSuffix(s, "/") && !strings.HasPrefix(s, "/")
		}
		isIdentity := func(s string) bool { return s != "" && s != "-" && !strings.Contains(s, "/") }
		switch act {
		case ErrataSame:
			if !isIdentity(subj) || !isIdentity(target) || subj == target {
				return nil, fmt.Errorf("errata %s:%d: same needs two different identity folders, got %q and %q", path, n, subj, target)
			}
			e.Same = append(e.Same, [2]string{subj, target})
		case ErrataRelabel:
			if !isImage(subj) || !isIdentity(target) {
				return nil, fmt.Errorf("errata %s:%d: relabel needs an image and an identity folder, got %q and %q", path, n, subj, target)
			}
			if _, dup := e.Relabel[subj]; dup || e.Drop[subj] {
				return nil, fmt.Errorf("errata %s:%d: %s corrected twice", path, n, subj)
			}
			e.Relabel[subj] = target
		case ErrataDrop:
			if !isImage(subj) || target != "-" {
				return nil, fmt.Errorf("errata %s:%d: drop needs an image and target \"-\", got %q and %q", path, n, subj, target)
			}
			if _, dup := e.Relabel[subj]; dup || e.Drop[subj] {
				return nil, fmt.Errorf("errata %s:%d: %s corrected twice", path, n, subj)
			}
			e.Drop[subj] = true
		default:
			return nil, fmt.Errorf("errata %s:%d: unknown action %q (same, relabel, drop)", path, n, act)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("errata %s: %w", path, err)
	}
	if !header {
		return nil, fmt.Errorf("errata %s: empty", path)
	}
	return e, nil
}

// check reports corrections that name nothing in images (image paths
// "folder/file"): a stale errata list must not pass silently.
func (e *Errata) check(images []string) error {
	if e == nil {
		return nil
	}
	imgs := map[string]bool{}
	ids := map[string]bool{}
	for _, im := range images {
		imgs[im] = true
		_, id := identityOf(im)
		ids[id] = true
	}
	for _, s := range e.Same {
		for _, id := range s {
			if !ids[id] {
				return fmt.Errorf("errata: identity %s is not in the data", id)
			}
		}
	}
	for im, id := range e.Relabel {
		if !imgs[im] {
			return fmt.Errorf("errata: image %s is not in the data", im)
		}
		if !ids[id] {
			return fmt.Errorf("errata: identity %s is not in the data", id)
		}
	}
	for im := range e.Drop {
		if !imgs[im] {
			return fmt.Errorf("errata: image %s is not in the data", im)
		}
	}
	return nil
}
