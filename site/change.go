package site

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/facegate/facegate/enroll/store"
)

// Op is what a Change does to a person.
type Op string

// Gallery operations.
const (
	// OpEnrol creates the person or replaces the name and all templates.
	OpEnrol Op = "enrol"
	// OpAdd appends templates to an enrolled person.
	OpAdd Op = "add"
	// OpRemove deletes the person and the templates.
	OpRemove Op = "remove"
)

// requestOps maps the op field of a signed enrollment request (the MQTT
// enroll/request operations) to the gallery operation it may authorise.
var requestOps = map[string]Op{
	"add":                OpEnrol,
	"replace":            OpEnrol,
	"enroll_from_camera": OpEnrol,
	"add_images":         OpAdd,
	"delete":             OpRemove,
}

// Limits of a Change.
const (
	MaxSealedTemplates = 1 << 20
	maxIDLen           = 128
	maxNameLen         = 256
	maxGateLen         = 64
	maxBodyLen         = 4096
	sealDomain         = "site/change"
	sigContext         = "facegate/site/change/v1\x00"
)

// ErrInvalid reports a change that is malformed (before any signature is
// looked at).
var ErrInvalid = errors.New("site: invalid change")

// Request is the operator's signed enrollment request that authorised a
// change, exactly as the accepting gate verified it (daemon/auth's Fields
// and Request): every gate checks the same signature again.
type Request struct {
	KeyID     string `json:"key_id"`
	TS        int64  `json:"ts"`
	Nonce     string `json:"nonce"`
	Sig       string `json:"sig"`
	Operation string `json:"operation"`
	RequestID string `json:"request_id"`
	// Body is the signed canonical body ("<name>:<len>:<value>\n" fields,
	// device_id first), bound to the change by Bind.
	Body []byte `json:"body"`
}

// Change is the replicated record of one gallery change.
type Change struct {
	// ID is the change id, also the JetStream message id: ChangeID of the
	// request's key id and nonce, so the same request is stored once.
	ID        string    `json:"id"`
	Op        Op        `json:"op"`
	SubjectID string    `json:"subject_id"`
	Name      string    `json:"name,omitempty"`
	Origin    string    `json:"origin"` // the gate that accepted the request
	Created   time.Time `json:"created"`
	// Templates are sealed under the site's gallery key (SealTemplates),
	// bound to ID; empty for OpRemove.
	Templates []byte  `json:"templates,omitempty"`
	Request   Request `json:"request"`
}

// ChangeID is the id of the change authorised by the request signed with
// keyID and nonce.
func ChangeID(keyID, nonce string) string { return "rq." + keyID + "." + nonce }

func validGate(s string) bool {
	if s == "" || len(s) > maxGateLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// Validate checks the structure of c: known op, bounded printable fields,
// templates present exactly when the op carries them, and an id derived
// from the request.
func (c *Change) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w %q: %s", ErrInvalid, c.ID, fmt.Sprintf(format, a...))
	}
	switch c.Op {
	case OpEnrol, OpAdd, OpRemove:
	default:
		return bad("unknown op %q", c.Op)
	}
	if c.SubjectID == "" || len(c.SubjectID) > maxIDLen || !printable(c.SubjectID) {
		return bad("subject id must be 1-%d printable bytes", maxIDLen)
	}
	if len(c.Name) > maxNameLen || !printable(c.Name) {
		return bad("name must be at most %d printable bytes", maxNameLen)
	}
	if !validGate(c.Origin) {
		return bad("origin must be 1-%d of [A-Za-z0-9._-]", maxGateLen)
	}
	if (c.Op == OpRemove) != (len(c.Templates) == 0) {
		return bad("op %s with %d bytes of templates", c.Op, len(c.Templates))
	}
	if len(c.Templates) > MaxSealedTemplates {
		return bad("%d bytes of templates, at most %d", len(c.Templates), MaxSealedTemplates)
	}
	if len(c.Request.Body) > maxBodyLen {
		return bad("request body of %d bytes", len(c.Request.Body))
	}
	if c.ID != ChangeID(c.Request.KeyID, c.Request.Nonce) || c.Request.KeyID == "" || c.Request.Nonce == "" {
		return bad("id is not derived from the request's key id and nonce")
	}
	return nil
}

// Bind checks that the signed request authorises exactly this change: the
// operation, subject, name and the device it was sent to (the origin).
// A gate that holds a valid request for one person cannot turn it into a
// change of another, nor pass another gate's request as its own.
func (c *Change) Bind() error {
	fields, err := parseBody(c.Request.Body)
	if err != nil {
		return fmt.Errorf("%w %q: request body: %w", ErrInvalid, c.ID, err)
	}
	op, ok := requestOps[fields["op"]]
	switch {
	case !ok || op != c.Op:
		return fmt.Errorf("%w %q: request op %q does not authorise %s", ErrInvalid, c.ID, fields["op"], c.Op)
	case c.Request.Operation != "enroll/"+fields["op"]:
		return fmt.Errorf("%w %q: operation %q does not match body op %q", ErrInvalid, c.ID, c.Request.Operation, fields["op"])
	case fields["subject_id"] != c.SubjectID:
		return fmt.Errorf("%w %q: request is for subject %q, change for %q", ErrInvalid, c.ID, fields["subject_id"], c.SubjectID)
	case c.Op == OpEnrol && fields["name"] != c.Name:
		return fmt.Errorf("%w %q: request names %q, change %q", ErrInvalid, c.ID, fields["name"], c.Name)
	case fields["device_id"] != c.Origin:
		return fmt.Errorf("%w %q: request was sent to %q, change comes from %q", ErrInvalid, c.ID, fields["device_id"], c.Origin)
	case fields["request_id"] != c.Request.RequestID:
		return fmt.Errorf("%w %q: body request id %q does not match %q", ErrInvalid, c.ID, fields["request_id"], c.Request.RequestID)
	}
	return nil
}

// parseBody decodes daemon/auth's Body encoding strictly: each field is
// "<name>:<decimal length>:<value>\n"; a repeated name is an error.
func parseBody(b []byte) (map[string]string, error) {
	out := map[string]string{}
	for len(b) > 0 {
		name, rest, ok := bytes.Cut(b, []byte{':'})
		if !ok || len(name) == 0 || len(name) > 64 {
			return nil, errors.New("field name")
		}
		num, rest, ok := bytes.Cut(rest, []byte{':'})
		if !ok {
			return nil, fmt.Errorf("field %q: length", name)
		}
		n, err := strconv.Atoi(string(num))
		if err != nil || n < 0 || n+1 > len(rest) || rest[n] != '\n' || string(num) != strconv.Itoa(n) {
			return nil, fmt.Errorf("field %q: length %q", name, num)
		}
		if _, dup := out[string(name)]; dup {
			return nil, fmt.Errorf("field %q repeated", name)
		}
		out[string(name)] = string(rest[:n])
		b = rest[n+1:]
	}
	return out, nil
}

// SealTemplates encodes templates in enroll/store's record form and seals
// them under the site's gallery key, bound to the change id.
func SealTemplates(k store.Key, changeID string, ts []store.Template) ([]byte, error) {
	if len(ts) == 0 || len(ts) > store.MaxTemplates {
		return nil, fmt.Errorf("seal templates of %s: %d templates, want 1-%d", changeID, len(ts), store.MaxTemplates)
	}
	var pt []byte
	pt = binary.LittleEndian.AppendUint16(pt, uint16(len(ts)))
	for i, t := range ts {
		b, err := store.EncodeTemplate(t)
		if err != nil {
			return nil, fmt.Errorf("seal templates of %s: template %d: %w", changeID, i, err)
		}
		pt = binary.LittleEndian.AppendUint32(pt, uint32(len(b)))
		pt = append(pt, b...)
	}
	sealed, err := store.SealBlob(k, sealDomain, []byte(changeID), pt)
	if err != nil {
		return nil, fmt.Errorf("seal templates of %s: %w", changeID, err)
	}
	return sealed, nil
}

// OpenTemplates opens c's templates with any of keys (the site's current
// and older gallery keys).
func OpenTemplates(keys []store.Key, c *Change) ([]store.Template, error) {
	pt, err := store.OpenBlob(keys, sealDomain, []byte(c.ID), c.Templates)
	if err != nil {
		return nil, fmt.Errorf("open templates of %s: %w", c.ID, err)
	}
	if len(pt) < 2 {
		return nil, fmt.Errorf("open templates of %s: %w: truncated", c.ID, ErrInvalid)
	}
	n := int(binary.LittleEndian.Uint16(pt))
	pt = pt[2:]
	if n == 0 || n > store.MaxTemplates {
		return nil, fmt.Errorf("open templates of %s: %w: %d templates", c.ID, ErrInvalid, n)
	}
	out := make([]store.Template, 0, n)
	for i := 0; i < n; i++ {
		if len(pt) < 4 {
			return nil, fmt.Errorf("open templates of %s: %w: truncated", c.ID, ErrInvalid)
		}
		l := int(binary.LittleEndian.Uint32(pt))
		if l > len(pt)-4 {
			return nil, fmt.Errorf("open templates of %s: %w: template %d truncated", c.ID, ErrInvalid, i)
		}
		t, err := store.DecodeTemplate(pt[4 : 4+l])
		if err != nil {
			return nil, fmt.Errorf("open templates of %s: template %d: %w", c.ID, i, err)
		}
		out = append(out, t)
		pt = pt[4+l:]
	}
	if len(pt) != 0 {
		return nil, fmt.Errorf("open templates of %s: %w: %d trailing bytes", c.ID, ErrInvalid, len(pt))
	}
	return out, nil
}

// envelope is the message on the gallery stream: the change's JSON and the
// origin gate's Ed25519 signature over it.
type envelope struct {
	Change  json.RawMessage `json:"change"`
	GateSig string          `json:"gate_sig"`
}

// Encode returns the stream message of c signed by its origin gate's key.
func Encode(c *Change, gateKey ed25519.PrivateKey) ([]byte, error) {
	if len(gateKey) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("encode change %s: gate key has %d bytes", c.ID, len(gateKey))
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode change %s: %w", c.ID, err)
	}
	sig := ed25519.Sign(gateKey, append([]byte(sigContext), raw...))
	out, err := json.Marshal(envelope{Change: raw, GateSig: base64.StdEncoding.EncodeToString(sig)})
	if err != nil {
		return nil, fmt.Errorf("encode change %s: %w", c.ID, err)
	}
	return out, nil
}

// Decode parses a stream message and checks the origin gate's signature
// with gates (every gate's public key, by gate id), then the change's
// structure and its binding to the signed request. The operator's
// signature is the Verifier's to check.
func Decode(data []byte, gates GateKeys) (*Change, error) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%w: envelope: %w", ErrInvalid, err)
	}
	var c Change
	dec := json.NewDecoder(bytes.NewReader(env.Change))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: change: %w", ErrInvalid, err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	pub, ok := gates[c.Origin]
	if !ok {
		return &c, fmt.Errorf("%w: change %s from unknown gate %q", ErrGateSignature, c.ID, c.Origin)
	}
	sig, err := base64.StdEncoding.DecodeString(env.GateSig)
	if err != nil || !ed25519.Verify(pub, append([]byte(sigContext), env.Change...), sig) {
		return &c, fmt.Errorf("%w: change %s claims gate %q", ErrGateSignature, c.ID, c.Origin)
	}
	if err := c.Bind(); err != nil {
		return &c, err
	}
	return &c, nil
}
