package store

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestSealBlobRoundTripAndBinding(t *testing.T) {
	k1, err := NewKey("site-1", bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	k2, err := NewKey("site-2", bytes.Repeat([]byte{2}, 32))
	if err != nil {
		t.Fatal(err)
	}
	pt := []byte("templates")
	sealed, err := SealBlob(k1, "site/change", []byte("c1"), pt)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenBlob([]Key{k2, k1}, "site/change", []byte("c1"), sealed)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("open with the key among old keys: %q, %v", got, err)
	}
	if _, err := OpenBlob([]Key{k1}, "site/change", []byte("c2"), sealed); !errors.Is(err, ErrDecrypt) {
		t.Errorf("moved to another name: %v, want ErrDecrypt", err)
	}
	if _, err := OpenBlob([]Key{k1}, "other", []byte("c1"), sealed); !errors.Is(err, ErrDecrypt) {
		t.Errorf("another domain: %v, want ErrDecrypt", err)
	}
	if _, err := OpenBlob([]Key{k2}, "site/change", []byte("c1"), sealed); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("key not given: %v, want ErrUnknownKey", err)
	}
	// A blob never opens as a gallery record of the same name.
	r, _ := newKeyring(k1, nil)
	if _, err := r.open("site/change", []byte("c1"), sealed); !errors.Is(err, ErrDecrypt) {
		t.Errorf("blob opened as a record: %v", err)
	}
	if _, err := SealBlob(Key{}, "d", nil, pt); err == nil {
		t.Error("sealed with a zero key")
	}
}

func TestEncodeTemplateRoundTrip(t *testing.T) {
	in := Template{Model: Model{Name: "m", Version: "1"}, Embedding: []float32{0.5, -1, 2}, Created: time.Unix(1700000000, 5).UTC()}
	b, err := EncodeTemplate(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeTemplate(b)
	if err != nil {
		t.Fatal(err)
	}
	if out.Model != in.Model || !out.Created.Equal(in.Created) || len(out.Embedding) != 3 || out.Embedding[1] != -1 {
		t.Fatalf("round trip: %+v", out)
	}
	if _, err := EncodeTemplate(Template{Model: Model{Name: "m"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty embedding: %v, want ErrInvalid", err)
	}
	if _, err := DecodeTemplate(b[:len(b)-1]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated: %v, want ErrCorrupt", err)
	}
}
