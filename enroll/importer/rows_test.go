package importer

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestReadCSV(t *testing.T) {
	rows, err := readCSV(strings.NewReader(`ID,Name,Photo
# a comment
a, Ann Lee ,a.jpg, /abs/b.png,,
"b,c",Quoted,x.jpg
c,"broken
`), "in.csv", "/data")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows: %+v", len(rows), rows)
	}
	want := Row{N: 1, Source: "in.csv:3", ID: "a", Name: "Ann Lee", Photos: []string{"/data/a.jpg", "/abs/b.png"}}
	if !reflect.DeepEqual(rows[0], want) {
		t.Errorf("row 1: %+v, want %+v", rows[0], want)
	}
	Validate(rows)
	if rows[0].bad != nil || rows[1].bad == nil || rows[1].bad.code != CodeBadID {
		t.Errorf("validation: %+v %+v", rows[0].bad, rows[1].bad)
	}
	if rows[2].bad == nil || rows[2].bad.code != CodeBadRow {
		t.Errorf("unterminated quote: %+v", rows[2])
	}
}

func TestReadDir(t *testing.T) {
	root := t.TempDir()
	writePhoto(t, filepath.Join(root, "Ann_Lee", "2.jpg"), 1)
	writePhoto(t, filepath.Join(root, "Ann_Lee", "1.PNG"), 2)
	os.WriteFile(filepath.Join(root, "Ann_Lee", "notes.txt"), []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(root, "empty"), 0o755)
	os.MkdirAll(filepath.Join(root, ".hidden"), 0o755)
	os.WriteFile(filepath.Join(root, "stray.jpg"), []byte("x"), 0o644)
	rows, err := ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	Validate(rows)
	if len(rows) != 2 {
		t.Fatalf("%d rows: %+v", len(rows), rows)
	}
	a := rows[0]
	if a.ID != "Ann_Lee" || a.Name != "Ann Lee" || len(a.Photos) != 2 || filepath.Base(a.Photos[0]) != "1.PNG" || a.bad != nil {
		t.Errorf("Ann_Lee: %+v", a)
	}
	if rows[1].bad == nil || rows[1].bad.code != CodeNoPhotos {
		t.Errorf("empty folder: %+v", rows[1])
	}
}

// TestShrink: a photo over the gate's limits is scaled down and re-encoded
// as a JPEG within them, keeping its EXIF segment (the orientation), the
// same bytes every time (so a rerun compares equal hashes), with a
// warning; one within the limits is sent as it is.
func TestShrink(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	img := image.NewRGBA(image.Rect(0, 0, 900, 700))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.IntN(256)) // noise compresses badly
	}
	var raw bytes.Buffer
	if err := jpeg.Encode(&raw, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	// An EXIF segment with orientation 6 after the SOI.
	exif := []byte{0xFF, 0xE1, 0, 34}
	exif = append(exif, []byte("Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00\x00\x00\x00\x00")...)
	exif[3] = byte(len(exif) - 2)
	data := append(append([]byte{0xFF, 0xD8}, exif...), raw.Bytes()[2:]...)
	big := filepath.Join(dir, "big.jpg")
	os.WriteFile(big, data, 0o644)
	lim := PhotoLimits{MaxBytes: 100 << 10, MaxPixels: 500 * 500}

	ph, bad := loadPhoto(big, lim)
	if bad != nil {
		t.Fatal(bad.reason)
	}
	if len(ph.data) > lim.MaxBytes || ph.note == "" {
		t.Fatalf("re-encoded to %d bytes (limit %d), note %q", len(ph.data), lim.MaxBytes, ph.note)
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(ph.data))
	if err != nil || cfg.Width*cfg.Height > lim.MaxPixels {
		t.Fatalf("re-encoded photo: %v %dx%d", err, cfg.Width, cfg.Height)
	}
	if !bytes.Equal(exifSegment(ph.data), exif) {
		t.Errorf("EXIF segment not kept: %x", exifSegment(ph.data))
	}
	again, _ := loadPhoto(big, lim)
	if again.sha256 != ph.sha256 {
		t.Error("re-encoding is not deterministic: a rerun would not recognise the photo")
	}
	sum := sha256.Sum256(ph.data)
	if ph.sha256 != hex.EncodeToString(sum[:]) {
		t.Error("sha256 is not the sent bytes'")
	}

	small := filepath.Join(dir, "small.png")
	var pb bytes.Buffer
	gray := image.NewGray(image.Rect(0, 0, 20, 20))
	gray.SetGray(3, 4, color.Gray{200})
	png.Encode(&pb, gray)
	os.WriteFile(small, pb.Bytes(), 0o644)
	ph, bad = loadPhoto(small, lim)
	if bad != nil || !bytes.Equal(ph.data, pb.Bytes()) || ph.note != "" {
		t.Errorf("a photo within the limits is sent as it is: %v %q", bad, ph.note)
	}
}

// TestRepeatedPhoto: the same file twice in a row is sent once.
func TestRepeatedPhoto(t *testing.T) {
	dir := t.TempDir()
	a, _ := writePhoto(t, filepath.Join(dir, "a.jpg"), 1)
	b := filepath.Join(dir, "copy.jpg")
	data, _ := os.ReadFile(a)
	os.WriteFile(b, data, 0o644)
	phs, warnings, bad := loadPhotos([]string{a, b}, PhotoLimits{})
	if bad != nil || len(phs) != 1 || len(warnings) != 1 {
		t.Errorf("photos %d, warnings %q, bad %v", len(phs), warnings, bad)
	}
}
