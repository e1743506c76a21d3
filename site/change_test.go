package site

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/facegate/facegate/enroll/store"
)

func TestChangeEncodeDecode(t *testing.T) {
	f := newFixture(t, "a", "b")
	c := f.change(t, "a", OpEnrol, "p1", "Ada", 1, time.Now())
	msg, err := Encode(c, f.gateKeys["a"])
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(msg, f.gates)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.verifier().Verify(got); err != nil {
		t.Fatalf("operator signature: %v", err)
	}
	ts, err := OpenTemplates([]store.Key{f.siteKey}, got)
	if err != nil || len(ts) != 1 || len(ts[0].Embedding) != 512 {
		t.Fatalf("templates: %v, %v", ts, err)
	}
}

func TestDecodeRefuses(t *testing.T) {
	f := newFixture(t, "a", "b")
	now := time.Now()
	cases := map[string]struct {
		edit func(c *Change)
		key  string
		want error
	}{
		"signed by another gate": {key: "b", want: ErrGateSignature},
		"unknown origin":         {edit: func(c *Change) { c.Origin = "z" }, want: ErrGateSignature},
		"subject swapped":        {edit: func(c *Change) { c.SubjectID = "p2" }, want: ErrInvalid},
		"name swapped":           {edit: func(c *Change) { c.Name = "Eve" }, want: ErrInvalid},
		"op widened":             {edit: func(c *Change) { c.Op = OpAdd }, want: ErrInvalid},
		"id not from request":    {edit: func(c *Change) { c.ID = "x" }, want: ErrInvalid},
		"remove with templates":  {edit: func(c *Change) { c.Op = OpRemove }, want: ErrInvalid},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := f.change(t, "a", OpEnrol, "p1", "Ada", 1, now)
			if tc.edit != nil {
				tc.edit(c)
			}
			key := f.gateKeys["a"]
			if tc.key != "" {
				key = f.gateKeys[tc.key]
			}
			msg, err := Encode(c, key)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Decode(msg, f.gates); !errors.Is(err, tc.want) {
				t.Fatalf("Decode: %v, want %v", err, tc.want)
			}
		})
	}
	// A request sent to gate b, replayed by gate a as its own.
	c := f.change(t, "b", OpEnrol, "p1", "Ada", 1, now)
	c.Origin = "a"
	msg, _ := Encode(c, f.gateKeys["a"])
	if _, err := Decode(msg, f.gates); !errors.Is(err, ErrInvalid) {
		t.Errorf("another gate's request: %v, want ErrInvalid", err)
	}
	// Tampered templates fail to open.
	c = f.change(t, "a", OpEnrol, "p1", "Ada", 1, now)
	c.Templates[len(c.Templates)-1] ^= 1
	if _, err := OpenTemplates([]store.Key{f.siteKey}, c); err == nil {
		t.Error("tampered templates opened")
	}
	// The operator's signature over a changed body.
	c = f.change(t, "a", OpEnrol, "p1", "Ada", 1, now)
	last := "0"
	if c.Request.Sig[len(c.Request.Sig)-1] == '0' {
		last = "1"
	}
	c.Request.Sig = c.Request.Sig[:len(c.Request.Sig)-1] + last
	if err := f.verifier().Verify(c); err == nil {
		t.Error("wrong signature verified")
	}
	if _, err := Encode(c, ed25519.PrivateKey{}); err == nil {
		t.Error("encoded without a key")
	}
}

func TestCheckStored(t *testing.T) {
	f := newFixture(t, "a")
	at := time.Unix(1_800_000_000, 0)
	c := f.change(t, "a", OpRemove, "p1", "", 1, at)
	if err := checkStored(c, at.Add(DefaultWindow), DefaultWindow); err != nil {
		t.Errorf("at the window's edge: %v", err)
	}
	if err := checkStored(c, at.Add(DefaultWindow+time.Second), DefaultWindow); !errors.Is(err, ErrStale) {
		t.Errorf("replayed later: %v, want ErrStale", err)
	}
	if err := checkStored(c, at.Add(-DefaultWindow-time.Second), DefaultWindow); !errors.Is(err, ErrStale) {
		t.Errorf("signed in the future: %v, want ErrStale", err)
	}
}

func TestParseBody(t *testing.T) {
	good := "a:1:x\nb:0:\nc:3:a\nb\n"
	m, err := parseBody([]byte(good))
	if err != nil || m["a"] != "x" || m["b"] != "" || m["c"] != "a\nb" {
		t.Fatalf("%v %v", m, err)
	}
	for _, bad := range []string{"a:1:x", "a:2:x\n", "a:1:x\na:1:y\n", "a:-1:\n", "a:01:x\n", ":1:x\n", "a\n"} {
		if _, err := parseBody([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func FuzzDecode(f *testing.F) {
	fx := newFixture(f, "a")
	c := fx.change(f, "a", OpEnrol, "p1", "Ada", 1, time.Now())
	msg, _ := Encode(c, fx.gateKeys["a"])
	f.Add(msg)
	f.Add([]byte(`{"change":{},"gate_sig":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode(data, fx.gates)
		if err == nil && c == nil {
			t.Fatal("nil change without error")
		}
	})
}

func FuzzParseBody(f *testing.F) {
	f.Add([]byte("a:1:x\nb:0:\n"))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = parseBody(b) })
}
