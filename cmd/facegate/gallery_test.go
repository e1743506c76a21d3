package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facegate/facegate/daemon"
	"github.com/facegate/facegate/enroll/store"
)

// TestGalleryRekey: records sealed under an old key are re-encrypted under
// the new first key by `facegate gallery rekey`, after which the gallery
// opens with the new key alone; a running daemon's lock is reported.
func TestGalleryRekey(t *testing.T) {
	dir := t.TempDir()
	secret := func() string {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(b)
	}
	oldLine, newLine := "old:"+secret(), "new:"+secret()
	keyFile := filepath.Join(dir, "gallery-key")
	write := func(lines ...string) {
		if err := os.WriteFile(keyFile, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(oldLine)
	enrollKeys := filepath.Join(dir, "enroll-keys")
	if err := os.WriteFile(enrollKeys, []byte("k1:"+secret()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"FACEGATE_STATE_DIR": dir, "FACEGATE_GALLERY_KEY": keyFile, "FACEGATE_ENROLL_KEYS": enrollKeys,
		"FACEGATE_DEVICE_ID": "door1", "FACEGATE_MQTT_EMBEDDED": "true",
	} {
		t.Setenv(k, v)
	}
	keys := func() []store.Key {
		ks, err := daemon.GalleryKeys(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		return ks
	}
	ks := keys()
	st, err := store.Open(daemon.GalleryPath(dir), ks[0], store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := store.Model{Name: "dlib-resnet-v1", Version: "1"}
	for _, id := range []string{"alice", "bob"} {
		e := make([]float32, 128)
		e[0] = 1
		if err := st.Put(store.Person{ID: id, DisplayName: id, Templates: []store.Template{{Model: m, Embedding: e}}}); err != nil {
			t.Fatal(err)
		}
	}
	// While another process holds the gallery, the command says so.
	var out bytes.Buffer
	if err := cmdGallery(context.Background(), []string{"-wait", "100ms", "check"}, &out); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("check while open elsewhere: %v", err)
	}
	st.Close()

	write(newLine, oldLine) // a new key first, the old one below
	type report struct {
		Rekeyed *int           `json:"rekeyed"`
		People  int            `json:"people"`
		KeyIDs  map[string]int `json:"records_per_key_id"`
	}
	run := func(args ...string) report {
		t.Helper()
		out.Reset()
		if err := cmdGallery(context.Background(), args, &out); err != nil {
			t.Fatalf("gallery %v: %v", args, err)
		}
		var r report
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("%v: %s", err, out.String())
		}
		return r
	}
	if r := run("check"); r.People != 2 || r.KeyIDs["old"] == 0 || r.KeyIDs["new"] != 0 {
		t.Fatalf("before rekey: %+v", r)
	}
	r := run("rekey")
	if r.Rekeyed == nil || *r.Rekeyed == 0 || r.People != 2 || r.KeyIDs["old"] != 0 || r.KeyIDs["new"] == 0 {
		t.Fatalf("after rekey: %+v", r)
	}
	write(newLine) // the old key destroyed
	ks = keys()
	st, err = store.Open(daemon.GalleryPath(dir), ks[0], store.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("open with the new key alone: %v", err)
	}
	defer st.Close()
	if p, err := st.Get("alice"); err != nil || len(p.Templates) != 1 || p.Templates[0].Embedding[0] != 1 {
		t.Fatalf("alice after rekey: %+v %v", p, err)
	}
}
