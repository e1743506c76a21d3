package eval

import (
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
)

// identityOf is the folder of an image path: "lfw__Name/001.jpg" -> source
// "lfw", identity "lfw__Name".
func identityOf(image string) (source, identity string) {
	identity, _, _ = strings.Cut(filepath.ToSlash(image), "/")
	source, _, _ = strings.Cut(identity, "__")
	return source, identity
}

// RandomImpostors draws n distinct pairs of acquired images (those with an
// embedding) of different identities within one source (never across
// sources, where one person may appear under two names),
// deterministically: the same images and n give the same pairs.
func RandomImpostors(images []string, emb map[string][]float32, n int) []Pair {
	bySource := map[string][]string{}
	var sources []string
	for _, im := range images {
		if emb[im] == nil {
			continue
		}
		src, _ := identityOf(im)
		if bySource[src] == nil {
			sources = append(sources, src)
		}
		bySource[src] = append(bySource[src], im)
	}
	sort.Strings(sources)
	rng := rand.New(rand.NewPCG(20261128, uint64(n)))
	seen := map[[2]string]bool{}
	var out []Pair
	for tries := 0; len(out) < n && tries < 20*n && len(sources) > 0; tries++ {
		ims := bySource[sources[rng.IntN(len(sources))]]
		if len(ims) < 2 {
			continue
		}
		a, b := ims[rng.IntN(len(ims))], ims[rng.IntN(len(ims))]
		_, ia := identityOf(a)
		_, ib := identityOf(b)
		if ia == ib {
			continue
		}
		if b < a {
			a, b = b, a
		}
		if seen[[2]string{a, b}] {
			continue
		}
		seen[[2]string{a, b}] = true
		out = append(out, Pair{A: a, B: b, Same: false})
	}
	return out
}
