package store

import (
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkOpenLoad10k measures daemon start-up with a gallery of 10,000
// people with one 128-d template each: Open (key check) plus ForEach
// decrypting every record into an in-memory gallery.
func BenchmarkOpenLoad10k(b *testing.B) {
	const people, dim = 10000, 128
	path := filepath.Join(b.TempDir(), "gallery.db")
	k := testKey(b, "k1", 1)
	s, err := Open(path, k, Options{})
	if err != nil {
		b.Fatal(err)
	}
	batch := make([]Person, 0, 1000)
	for i := 0; i < people; i++ {
		id := fmt.Sprintf("person-%05d", i)
		batch = append(batch, Person{ID: id, DisplayName: "Name " + id, Templates: []Template{{Model: facenet, Embedding: embedding(i, dim)}}})
		if len(batch) == cap(batch) {
			if err := s.PutAll(batch...); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	s.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := Open(path, k, Options{ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		gallery := make(map[string][][]float32, people)
		err = s.ForEach(func(p Person) error {
			for _, t := range p.Templates {
				gallery[p.ID] = append(gallery[p.ID], t.Embedding)
			}
			return nil
		})
		s.Close()
		if err != nil {
			b.Fatal(err)
		}
		if len(gallery) != people {
			b.Fatalf("loaded %d people", len(gallery))
		}
	}
	b.ReportMetric(float64(people)*float64(b.N)/b.Elapsed().Seconds(), "people/s")
}
