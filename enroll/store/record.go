package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/facegate/facegate/internal/ident"
)

// Limits on stored data.
const (
	MaxIDLen        = 128
	MaxNameLen      = 256
	MaxDim          = 4096
	MaxTemplates    = 64
	maxModelField   = 128
	templateVersion = 1
)

// ErrInvalid reports a person or template that cannot be stored.
var ErrInvalid = errors.New("store: invalid record")

// ErrCorrupt reports a gallery whose contents contradict themselves
// (a template count that does not match, an undecodable record).
var ErrCorrupt = errors.New("store: gallery is corrupt")

// Model identifies the model that produced a template, as in its manifest
// (name and version). Templates from another model are not comparable.
type Model struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

func (m Model) String() string { return m.Name + "@" + m.Version }

// Template is one enrolled embedding.
type Template struct {
	Model     Model
	Embedding []float32
	Created   time.Time // set by the store when zero
}

// Source records where an enrollment came from.
type Source struct {
	Kind      string `json:"kind,omitempty"`       // "mqtt", "cli", "import", ...
	KeyID     string `json:"key_id,omitempty"`     // the key that authenticated the request
	RequestID string `json:"request_id,omitempty"` // the request's id
	Photos    int    `json:"photos,omitempty"`     // photos submitted
	Note      string `json:"note,omitempty"`
}

// Photo is what is kept about one enrollment photo: never the photo,
// only its sha256 (so that a bulk import can tell the same photo again),
// the gate's verdict on it and its quality score (docs/enrollment.md).
type Photo struct {
	SHA256  string    `json:"sha256"`
	Verdict string    `json:"verdict,omitempty"`
	Quality float64   `json:"quality"`
	Added   time.Time `json:"added"`
}

// MaxPhotos bounds the photo records of one person.
const MaxPhotos = MaxTemplates

// Person is an enrolled subject.
type Person struct {
	ID          string // 1-128 bytes of UTF-8 without control characters; stored in clear
	DisplayName string
	Created     time.Time // set by the store on first Put (kept if given)
	Updated     time.Time // set by the store on every change
	Source      Source
	// Templates are returned by Get and ForEach, and stored by Put.
	Templates []Template
	// NumTemplates is maintained by the store (read only).
	NumTemplates int
	// Photos describe the photos the templates came from, in order.
	Photos []Photo
}

// personRecord is the encrypted JSON form of a Person without templates.
type personRecord struct {
	ID           string    `json:"id"`
	DisplayName  string    `json:"display_name"`
	Created      time.Time `json:"created"`
	Updated      time.Time `json:"updated"`
	Source       Source    `json:"source"`
	NumTemplates int       `json:"num_templates"`
	Photos       []Photo   `json:"photos,omitempty"`
}

func validateID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("%w: person id must be 1-%d bytes", ErrInvalid, MaxIDLen)
	}
	if !printable(id) {
		return fmt.Errorf("%w: person id %q must be UTF-8 without control characters", ErrInvalid, id)
	}
	return nil
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) })
}

func validatePerson(p *Person) error {
	if err := validateID(p.ID); err != nil {
		return err
	}
	if err := ident.CheckText(p.DisplayName, MaxNameLen); err != nil {
		return fmt.Errorf("%w: person %q: display name: %v", ErrInvalid, p.ID, err)
	}
	if len(p.Photos) > MaxPhotos {
		return fmt.Errorf("%w: person %q: %d photos, at most %d", ErrInvalid, p.ID, len(p.Photos), MaxPhotos)
	}
	if len(p.Templates) > MaxTemplates {
		return fmt.Errorf("%w: person %q: %d templates, at most %d", ErrInvalid, p.ID, len(p.Templates), MaxTemplates)
	}
	for i := range p.Templates {
		if err := validateTemplate(&p.Templates[i]); err != nil {
			return fmt.Errorf("person %q template %d: %w", p.ID, i, err)
		}
	}
	return nil
}

func validateTemplate(t *Template) error {
	if t.Model.Name == "" || len(t.Model.Name) > maxModelField || len(t.Model.Version) > maxModelField ||
		!printable(t.Model.Name) || !printable(t.Model.Version) {
		return fmt.Errorf("%w: model name must be 1-%d printable bytes and version at most %d", ErrInvalid, maxModelField, maxModelField)
	}
	if n := len(t.Embedding); n == 0 || n > MaxDim {
		return fmt.Errorf("%w: embedding has %d values, want 1-%d", ErrInvalid, n, MaxDim)
	}
	for i, v := range t.Embedding {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: embedding value %d is %v", ErrInvalid, i, v)
		}
	}
	return nil
}

// encodeTemplate is the plaintext of a template record (little endian):
//
//	version(1) | len(name)(2) | name | len(version)(2) | version |
//	created unix ns (8) | dim (4) | dim × float32
func encodeTemplate(t Template) []byte {
	b := make([]byte, 0, 1+2+len(t.Model.Name)+2+len(t.Model.Version)+8+4+4*len(t.Embedding))
	b = append(b, templateVersion)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(t.Model.Name)))
	b = append(b, t.Model.Name...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(t.Model.Version)))
	b = append(b, t.Model.Version...)
	b = binary.LittleEndian.AppendUint64(b, uint64(t.Created.UnixNano()))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(t.Embedding)))
	for _, v := range t.Embedding {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

// decodeTemplate parses encodeTemplate's output strictly: exact length,
// bounded sizes, finite values.
func decodeTemplate(b []byte) (Template, error) {
	bad := func(what string) (Template, error) {
		return Template{}, fmt.Errorf("%w: template record: %s", ErrCorrupt, what)
	}
	if len(b) < 1 || b[0] != templateVersion {
		return bad("unknown version")
	}
	b = b[1:]
	str := func() (string, bool) {
		if len(b) < 2 {
			return "", false
		}
		n := int(binary.LittleEndian.Uint16(b))
		if n > maxModelField || len(b) < 2+n {
			return "", false
		}
		s := string(b[2 : 2+n])
		b = b[2+n:]
		return s, true
	}
	var t Template
	var ok bool
	if t.Model.Name, ok = str(); !ok {
		return bad("model name")
	}
	if t.Model.Version, ok = str(); !ok {
		return bad("model version")
	}
	if len(b) < 12 {
		return bad("truncated header")
	}
	t.Created = time.Unix(0, int64(binary.LittleEndian.Uint64(b))).UTC()
	dim := binary.LittleEndian.Uint32(b[8:])
	b = b[12:]
	if dim == 0 || dim > MaxDim || uint64(len(b)) != 4*uint64(dim) {
		return bad(fmt.Sprintf("dimension %d does not match %d payload bytes", dim, len(b)))
	}
	t.Embedding = make([]float32, dim)
	for i := range t.Embedding {
		t.Embedding[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	if err := validateTemplate(&t); err != nil {
		return Template{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return t, nil
}

func encodePerson(p personRecord) ([]byte, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode person %q: %w", p.ID, err)
	}
	return b, nil
}

func decodePerson(b []byte) (personRecord, error) {
	var p personRecord
	if err := json.Unmarshal(b, &p); err != nil {
		return personRecord{}, fmt.Errorf("%w: person record: %w", ErrCorrupt, err)
	}
	if err := validateID(p.ID); err != nil {
		return personRecord{}, fmt.Errorf("%w: person record: %w", ErrCorrupt, err)
	}
	if p.NumTemplates < 0 || p.NumTemplates > MaxTemplates {
		return personRecord{}, fmt.Errorf("%w: person %q: template count %d", ErrCorrupt, p.ID, p.NumTemplates)
	}
	return p, nil
}
