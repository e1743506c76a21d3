package infer

import (
	"fmt"
	"slices"
	"unsafe"

	tf "github.com/wamuir/graft/tensorflow"
)

// Input tensors kept between runs (issue 17, docs/benchmarks.md "Per-call
// overhead, every model").
//
// graft makes every tensor in C memory (TF_AllocateTensor) and frees it only
// in a finalizer after a Go collection. Feeding a fresh tensor on every run
// costs an allocation of the whole input (at batch 1 about 0.3 MB for the
// dlib ResNet, 0.2 MB for the detector; the C allocator hands back pages the
// kernel must fault in again), a finalizer, and, through the tensor garbage
// budget, a forced Go collection every few dozen runs. A Model instead keeps
// the input tensors of a finished run, per signature and shape, and the next
// run with that shape copies its input into their memory: one memcpy into
// memory TensorFlow already holds.
//
// graft gives no pointer to a tensor's memory, but Tensor.WriteContentsTo
// hands its writer the tensor's whole buffer in one Write (bytes.Reader's
// WriteTo); tensorView keeps that slice. If a graft release ever passes the
// buffer in pieces or as a copy, tensorView reports false and the run falls
// back to fresh tensors (TestFeedReuse would then fail on its "reused"
// check, not on wrong results).
//
// A set is owned by one run from feeds to release, so concurrent runs of
// one Model never share input memory: a run that finds no idle set of its
// shape makes a new one. release is called only after every output has been
// copied out, because an output may share its input's buffer (an identity or
// a reshape in the graph); TensorFlow holds its own reference to a fed
// buffer, so no kernel writes into it in place.

// maxIdleFeeds bounds the idle sets a Model keeps (batch sizes and split
// remainders seen recently; each holds one batch of input).
const maxIdleFeeds = 8

// feedSet is one run's input tensors, in the signature's sorted key order.
type feedSet struct {
	sig     string
	shapes  [][]int64
	tensors []*tf.Tensor
	views   [][]float32 // the tensors' own memory; nil for a fresh set
	feeds   map[tf.Output]*tf.Tensor
	made    int64 // C bytes allocated for this run (0 when reused)
	bytes   int64 // C bytes the set holds
}

// feeds returns the input tensors of rows [start, end) of inputs (all rows
// unless split): an idle set of the same signature and shapes with the
// values copied in, else a new one.
func (m *Model) feeds(s *Signature, inputs map[string]Float32Batch, start, end int, split bool) (*feedSet, error) {
	part := func(key string) Float32Batch {
		b := inputs[key]
		if !split {
			return b
		}
		n := b.RowLen()
		return Float32Batch{Shape: append([]int64{int64(end - start)}, b.Shape[1:]...), Data: b.Data[start*n : end*n]}
	}
	reuse := !m.fresh && end > start
	if reuse {
		if fs := m.takeIdle(s, inputs, split, end-start); fs != nil {
			for i, key := range s.inKeys {
				copy(fs.views[i], part(key).Data)
			}
			fs.made = 0
			return fs, nil
		}
	}
	fs := &feedSet{sig: s.Name, feeds: make(map[tf.Output]*tf.Tensor, len(s.inKeys))}
	for _, key := range s.inKeys {
		b := part(key)
		b.Shape = slices.Clone(b.Shape) // graft keeps the slice it is given
		t, err := newFloat32Tensor(b)
		if err != nil {
			return nil, fmt.Errorf("signature %q input %q: %w", s.Name, key, err)
		}
		fs.shapes = append(fs.shapes, b.Shape)
		fs.tensors = append(fs.tensors, t)
		fs.feeds[s.Inputs[key].op] = t
		fs.bytes += tensorBytes(t)
		if reuse {
			v, ok := tensorView(t, len(b.Data))
			if !ok {
				reuse = false
			}
			fs.views = append(fs.views, v)
		}
	}
	if !reuse {
		fs.views = nil
	}
	fs.made = fs.bytes
	return fs, nil
}

// takeIdle removes and returns an idle set for signature s whose shapes are
// those of inputs (with rows rows when split), or nil.
func (m *Model) takeIdle(s *Signature, inputs map[string]Float32Batch, split bool, rows int) *feedSet {
	m.idleMu.Lock()
	defer m.idleMu.Unlock()
	for i := len(m.idle) - 1; i >= 0; i-- {
		fs := m.idle[i]
		if fs.sig != s.Name || !fs.fits(s.inKeys, inputs, split, rows) {
			continue
		}
		m.idle = slices.Delete(m.idle, i, i+1)
		return fs
	}
	return nil
}

func (fs *feedSet) fits(keys []string, inputs map[string]Float32Batch, split bool, rows int) bool {
	if len(fs.shapes) != len(keys) {
		return false
	}
	for i, key := range keys {
		want, got := inputs[key].Shape, fs.shapes[i]
		if len(want) != len(got) || !slices.Equal(want[1:], got[1:]) {
			return false
		}
		if r := want[0]; (split && got[0] != int64(rows)) || (!split && got[0] != r) {
			return false
		}
	}
	return true
}

// release makes fs idle for a later run (a fresh set is dropped), keeping
// at most maxIdleFeeds: the oldest is dropped to its finalizers.
func (m *Model) release(fs *feedSet) {
	if fs.views == nil {
		return
	}
	m.idleMu.Lock()
	var dropped *feedSet
	if len(m.idle) == maxIdleFeeds {
		dropped = m.idle[0]
		m.idle = slices.Delete(m.idle, 0, 1)
	}
	m.idle = append(m.idle, fs)
	m.idleMu.Unlock()
	if dropped != nil {
		noteTensorGarbage(dropped.bytes)
	}
}

// dropIdle lets the idle sets go (Close).
func (m *Model) dropIdle() {
	m.idleMu.Lock()
	var n int64
	for _, fs := range m.idle {
		n += fs.bytes
	}
	m.idle = nil
	m.idleMu.Unlock()
	noteTensorGarbage(n)
}

// idleFeeds is the number of idle input sets (tests).
func (m *Model) idleFeeds() int {
	m.idleMu.Lock()
	defer m.idleMu.Unlock()
	return len(m.idle)
}

// tensorView returns the memory of the float32 tensor t of n values as a
// slice, valid while t lives; false when graft does not hand it over whole.
func tensorView(t *tf.Tensor, n int) ([]float32, bool) {
	var c, again viewCatcher
	if _, err := t.WriteContentsTo(&c); err != nil || c.calls != 1 || len(c.p) != 4*n || n == 0 {
		return nil, false
	}
	// A copy would come at another address each time.
	p := unsafe.SliceData(c.p)
	if _, err := t.WriteContentsTo(&again); err != nil || again.calls != 1 || unsafe.SliceData(again.p) != p {
		return nil, false
	}
	if uintptr(unsafe.Pointer(p))%unsafe.Alignof(float32(0)) != 0 {
		return nil, false
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(p)), n), true
}

// viewCatcher keeps the slice its one Write is given. It breaks io.Writer's
// rule against retaining p on purpose: p is the tensor's own C memory.
type viewCatcher struct {
	p     []byte
	calls int
}

func (c *viewCatcher) Write(p []byte) (int, error) {
	c.calls++
	c.p = p
	return len(p), nil
}
