package importer

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/facegate/facegate/internal/ident"
)

// MaxPhotos is the most photos one person is enrolled from (the gate's
// limit per request).
const MaxPhotos = 5

// maxNameLen is the gate's limit on a display name, in bytes.
const maxNameLen = 128

// Row is one person to enrol: a CSV line or a folder of the tree.
type Row struct {
	// N numbers the rows from 1 in input order.
	N int `json:"row"`
	// Source says where the row came from: "people.csv:12" or the folder.
	Source string `json:"source"`
	ID     string `json:"id"`
	Name   string `json:"name,omitempty"`
	// Photos are the photo files' paths.
	Photos []string `json:"photos"`
	// bad is why the row cannot be imported, found while reading or
	// validating it (nil when it can).
	bad *refusal
}

// refusal is a row refused before anything is sent.
type refusal struct {
	code   string
	reason string
	photo  string
}

// Codes of rows refused by the importer itself; the gate's own codes
// (no_face, duplicate, ...) are reported as the gate says them.
const (
	CodeBadRow        = "bad_row"         // a CSV line without id, name and a photo
	CodeBadID         = "bad_id"          // the identifier breaks internal/ident's rule
	CodeBadName       = "bad_name"        // the name is not acceptable display text
	CodeDuplicateID   = "duplicate_id"    // the identifier is on several rows: none is imported
	CodeNoPhotos      = "no_photos"       // a folder without JPEG or PNG files
	CodeTooManyPhotos = "too_many_photos" // more than MaxPhotos
	CodeMissingFile   = "missing_file"    // a photo file that cannot be read
	CodeBadFormat     = "bad_format"      // neither JPEG nor PNG
	CodeCorruptImage  = "corrupt_image"   // a JPEG or PNG that does not decode
	CodeTooLarge      = "too_large"       // too large even after re-encoding
	CodeSubjectExists = "subject_exists"  // enrolled from other photos, and -replace not given
)

// photoExt are the file name extensions a folder's photos are read from
// (case-insensitive); other files are ignored.
var photoExt = map[string]bool{".jpg": true, ".jpeg": true, ".png": true}

// ReadCSV reads rows from a CSV file: id,name,photo[,photo...] per line,
// photos relative to the CSV's folder unless absolute. A first line whose
// first field is "id" is a header; empty lines and lines starting with #
// are skipped. A line that cannot be used becomes a refused row (the
// import goes on); only an unreadable file is an error.
func ReadCSV(path string) ([]Row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read rows: %w", err)
	}
	defer f.Close()
	return readCSV(f, path, filepath.Dir(path))
}

func readCSV(r io.Reader, name, dir string) ([]Row, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	var rows []Row
	for first := true; ; first = false {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line, _ := cr.FieldPos(0)
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			rows = append(rows, Row{Source: name + ":" + strconv.Itoa(pe.StartLine), bad: &refusal{code: CodeBadRow, reason: pe.Err.Error()}})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read rows: %s: %w", name, err)
		}
		if first && strings.EqualFold(strings.TrimSpace(rec[0]), "id") {
			continue
		}
		for len(rec) > 0 && strings.TrimSpace(rec[len(rec)-1]) == "" {
			rec = rec[:len(rec)-1] // trailing empty cells (spreadsheets pad rows)
		}
		row := Row{Source: name + ":" + strconv.Itoa(line)}
		if len(rec) > 0 {
			row.ID = strings.TrimSpace(rec[0])
		}
		if len(rec) > 1 {
			row.Name = strings.TrimSpace(rec[1])
		}
		for _, p := range rec[min(2, len(rec)):] {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			if !filepath.IsAbs(p) {
				p = filepath.Join(dir, p)
			}
			row.Photos = append(row.Photos, p)
		}
		if len(rec) < 3 {
			row.bad = &refusal{code: CodeBadRow, reason: fmt.Sprintf("%d fields: want id,name,photo[,photo...]", len(rec))}
		}
		rows = append(rows, row)
	}
	number(rows)
	return rows, nil
}

// ReadDir reads rows from a folder tree: each subfolder of root is a
// person, its name the identifier and (underscores as spaces) the display
// name, its JPEG and PNG files (by name order) the photos. Files directly
// in root are ignored.
func ReadDir(root string) ([]Row, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("read rows: %w", err)
	}
	var rows []Row
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() { // follows links
			continue
		}
		row := Row{Source: dir, ID: e.Name(), Name: strings.ReplaceAll(e.Name(), "_", " ")}
		files, err := os.ReadDir(dir)
		if err != nil {
			row.bad = &refusal{code: CodeMissingFile, reason: err.Error()}
			rows = append(rows, row)
			continue
		}
		for _, f := range files {
			if !f.IsDir() && photoExt[strings.ToLower(filepath.Ext(f.Name()))] {
				row.Photos = append(row.Photos, filepath.Join(dir, f.Name()))
			}
		}
		sort.Strings(row.Photos)
		rows = append(rows, row)
	}
	number(rows)
	return rows, nil
}

func number(rows []Row) {
	for i := range rows {
		rows[i].N = i + 1
	}
}

// Validate checks what can be checked without reading the photos: the
// identifier and name by the gate's rules, the number of photos, and
// identifiers given on several rows (all of those rows are refused: which
// one is right is not the importer's guess). It marks bad rows, which Run
// reports without sending them.
func Validate(rows []Row) {
	seen := map[string][]int{}
	for i := range rows {
		r := &rows[i]
		if r.bad != nil {
			continue
		}
		switch {
		case ident.CheckID(r.ID) != nil:
			r.bad = &refusal{code: CodeBadID, reason: fmt.Sprintf("identifier %q: %v", r.ID, ident.CheckID(r.ID))}
		case ident.CheckText(r.Name, maxNameLen) != nil:
			r.bad = &refusal{code: CodeBadName, reason: fmt.Sprintf("name: %v", ident.CheckText(r.Name, maxNameLen))}
		case len(r.Photos) == 0:
			r.bad = &refusal{code: CodeNoPhotos, reason: "no JPEG or PNG photo"}
		case len(r.Photos) > MaxPhotos:
			r.bad = &refusal{code: CodeTooManyPhotos, reason: fmt.Sprintf("%d photos, at most %d: choose the best %d", len(r.Photos), MaxPhotos, MaxPhotos)}
		}
		if r.ID != "" {
			seen[r.ID] = append(seen[r.ID], i)
		}
	}
	for id, idx := range seen {
		if len(idx) < 2 {
			continue
		}
		var where []string
		for _, i := range idx {
			where = append(where, rows[i].Source)
		}
		for _, i := range idx {
			rows[i].bad = &refusal{code: CodeDuplicateID, reason: fmt.Sprintf("identifier %s is on %d rows (%s): none of them is imported", id, len(idx), strings.Join(where, ", "))}
		}
	}
}
