package infer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/facegate/facegate/infer/manifest"
)

// ErrModel is wrapped by errors about a model's files or its signatures.
var ErrModel = errors.New("model")

// ErrInput is wrapped by errors about the inputs passed to Run.
var ErrInput = errors.New("bad model input")

// Model is a loaded SavedModel with its validated manifest. Run methods are
// safe for concurrent use; Close must not race with them.
type Model struct {
	dir      string
	manifest *manifest.Manifest
	saved    *tf.SavedModel
	sigs     map[string]Signature
	maxBatch int
	loadTime time.Duration

	// Input tensors kept between runs (feeds.go): fresh is
	// Options.FreshInputTensors; idle holds the sets no run is using.
	fresh  bool
	idleMu sync.Mutex
	idle   []*feedSet
}

// Signature is a signature of the loaded graph.
type Signature struct {
	Name    string
	Inputs  map[string]Tensor
	Outputs map[string]Tensor
	inKeys  []string // the keys of Inputs, sorted
	outKeys []string // the keys of Outputs, sorted
}

// Tensor describes one input or output of a signature.
type Tensor struct {
	Key   string  // the signature's key, e.g. "images"
	Node  string  // graph node "name:index"
	DType string  // e.g. "float32"
	Shape []int64 // -1 for unknown dimensions; nil when the rank is unknown
	op    tf.Output
}

// Float32Batch is a dense float32 tensor in row-major order. Shape[0] is the
// batch dimension.
type Float32Batch struct {
	Shape []int64
	Data  []float32
}

// Rows is the size of the batch dimension.
func (b Float32Batch) Rows() int {
	if len(b.Shape) == 0 {
		return 0
	}
	return int(b.Shape[0])
}

// RowLen is the number of values in one row.
func (b Float32Batch) RowLen() int {
	n := 1
	for _, d := range b.Shape[1:] {
		n *= int(d)
	}
	return n
}

// Row returns row i (a view, not a copy).
func (b Float32Batch) Row(i int) []float32 {
	n := b.RowLen()
	return b.Data[i*n : (i+1)*n]
}

func (b Float32Batch) check() error {
	if len(b.Shape) == 0 {
		return fmt.Errorf("%w: empty shape", ErrInput)
	}
	n := int64(1)
	for _, d := range b.Shape {
		if d < 0 {
			return fmt.Errorf("%w: negative dimension in shape %v", ErrInput, b.Shape)
		}
		n *= d
	}
	if n != int64(len(b.Data)) {
		return fmt.Errorf("%w: shape %v holds %d values, data has %d", ErrInput, b.Shape, n, len(b.Data))
	}
	return nil
}

// Load opens the SavedModel in dir, reads its manifest and checks that every
// signature and tensor the manifest lists exists in the graph with the same
// dtype and a compatible shape.
func Load(dir string, opts Options) (*Model, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	st, err := os.Stat(filepath.Join(dir, "saved_model.pb"))
	if err != nil {
		return nil, fmt.Errorf("%w: load %s: no SavedModel there: %w", ErrModel, dir, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%w: load %s: saved_model.pb is a directory", ErrModel, dir)
	}
	m, err := manifest.Read(dir)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", dir, err)
	}
	cfg, err := opts.ConfigProto()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	quiet := quietFirstLoad() // tflog.go
	saved, err := tf.LoadSavedModel(dir, m.Tags, &tf.SessionOptions{Config: cfg})
	quiet()
	if err != nil {
		return nil, fmt.Errorf("%w: load SavedModel %s with tags %v: %w", ErrModel, dir, m.Tags, err)
	}
	model := &Model{dir: dir, manifest: m, saved: saved, maxBatch: opts.MaxBatch, loadTime: time.Since(start), fresh: opts.FreshInputTensors}
	if model.sigs, err = resolveSignatures(saved); err != nil {
		saved.Session.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrModel, dir, err)
	}
	if err := model.checkManifest(); err != nil {
		saved.Session.Close()
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return model, nil
}

func resolveSignatures(saved *tf.SavedModel) (map[string]Signature, error) {
	out := make(map[string]Signature, len(saved.Signatures))
	for name, s := range saved.Signatures {
		if strings.HasPrefix(name, "__saved_model") {
			continue // TensorFlow's internal init signature, not a callable one
		}
		sig := Signature{Name: name, Inputs: map[string]Tensor{}, Outputs: map[string]Tensor{}}
		for _, side := range []struct {
			from map[string]tf.TensorInfo
			to   map[string]Tensor
		}{{s.Inputs, sig.Inputs}, {s.Outputs, sig.Outputs}} {
			for key, ti := range side.from {
				op, err := graphOutput(saved.Graph, ti.Name)
				if err != nil {
					return nil, fmt.Errorf("signature %q tensor %q: %w", name, key, err)
				}
				var shape []int64
				if dims, err := ti.Shape.ToSlice(); err == nil {
					shape = dims
				}
				side.to[key] = Tensor{Key: key, Node: ti.Name, DType: dtypeName(ti.DType), Shape: shape, op: op}
			}
		}
		sig.inKeys, sig.outKeys = sortedKeys(sig.Inputs), sortedKeys(sig.Outputs)
		out[name] = sig
	}
	return out, nil
}

func graphOutput(g *tf.Graph, name string) (tf.Output, error) {
	opName, idx := name, 0
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		opName = name[:i]
		if _, err := fmt.Sscanf(name[i+1:], "%d", &idx); err != nil {
			return tf.Output{}, fmt.Errorf("bad tensor name %q", name)
		}
	}
	op := g.Operation(opName)
	if op == nil {
		return tf.Output{}, fmt.Errorf("graph has no operation %q", opName)
	}
	if idx >= op.NumOutputs() {
		return tf.Output{}, fmt.Errorf("operation %q has %d outputs, not %d", opName, op.NumOutputs(), idx+1)
	}
	return op.Output(idx), nil
}

func (m *Model) checkManifest() error {
	var errs []string
	for _, name := range sortedKeys(m.manifest.Signatures) {
		spec := m.manifest.Signatures[name]
		sig, ok := m.sigs[name]
		if !ok {
			errs = append(errs, fmt.Sprintf("signature %q is in the manifest but not in the graph (graph has %v)", name, sortedKeys(m.sigs)))
			continue
		}
		for _, side := range []struct {
			what string
			want map[string]manifest.TensorSpec
			got  map[string]Tensor
		}{{"input", spec.Inputs, sig.Inputs}, {"output", spec.Outputs, sig.Outputs}} {
			for _, key := range sortedKeys(side.want) {
				want := side.want[key]
				got, ok := side.got[key]
				if !ok {
					errs = append(errs, fmt.Sprintf("signature %q has no %s %q (has %v)", name, side.what, key, sortedKeys(side.got)))
					continue
				}
				if got.DType != want.DType {
					errs = append(errs, fmt.Sprintf("signature %q %s %q is %s in the graph, manifest says %s", name, side.what, key, got.DType, want.DType))
				}
				if !shapeCompatible(want.Shape, got.Shape) {
					errs = append(errs, fmt.Sprintf("signature %q %s %q has shape %v in the graph, manifest says %v", name, side.what, key, got.Shape, want.Shape))
				}
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: manifest does not match the graph: %s", manifest.ErrInvalid, strings.Join(errs, "; "))
	}
	return nil
}

func shapeCompatible(want, got []int64) bool {
	if got == nil { // unknown rank in the graph
		return true
	}
	if len(want) != len(got) {
		return false
	}
	for i := range want {
		if want[i] >= 0 && got[i] >= 0 && want[i] != got[i] {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Dir is the folder the model was loaded from.
func (m *Model) Dir() string { return m.dir }

// Manifest is the model's validated manifest. Callers must not modify it.
func (m *Model) Manifest() *manifest.Manifest { return m.manifest }

// LoadTime is how long TensorFlow took to load the SavedModel.
func (m *Model) LoadTime() time.Duration { return m.loadTime }

// Signatures lists the graph's signatures, discovered from its MetaGraph.
func (m *Model) Signatures() map[string]Signature { return m.sigs }

// Devices lists the devices TensorFlow placed the session on.
func (m *Model) Devices() ([]tf.Device, error) {
	d, err := m.saved.Session.ListDevices()
	if err != nil {
		return nil, fmt.Errorf("list devices of %s: %w", m.dir, err)
	}
	return d, nil
}

// Close releases the TensorFlow session.
func (m *Model) Close() error {
	if m.saved == nil {
		return nil
	}
	err := m.saved.Session.Close()
	m.saved = nil
	m.dropIdle()
	if err != nil {
		return fmt.Errorf("close model %s: %w", m.dir, err)
	}
	return nil
}

// RunFloat32 runs signature sig with float32 inputs and returns the named outputs (all of the signature's outputs when
// none are named). A single input larger than Options.MaxBatch rows is split
// and the outputs concatenated, so the result does not depend on MaxBatch.
func (m *Model) RunFloat32(sig string, inputs map[string]Float32Batch, outputs ...string) (map[string]Float32Batch, error) {
	if m.saved != nil && len(outputs) == 0 {
		if s, ok := m.sigs[sig]; ok {
			outputs = s.outKeys
		}
	}
	res, err := m.runFloat32(sig, inputs, outputs, nil)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Float32Batch, len(res))
	for i, name := range outputs {
		out[name] = res[i]
	}
	return out, nil
}

// runFloat32 is RunFloat32 with the outputs named (at least one) and
// returned in that order. Output i is written into dst[i]'s memory when it
// is large enough (dst may be shorter than outputs or nil), so a caller that
// keeps buffers between calls fetches its outputs without allocating them.
func (m *Model) runFloat32(sig string, inputs map[string]Float32Batch, outputs []string, dst [][]float32) ([]Float32Batch, error) {
	if m.saved == nil {
		return nil, fmt.Errorf("%w: %s is closed", ErrModel, m.dir)
	}
	s, ok := m.sigs[sig]
	if !ok {
		return nil, fmt.Errorf("%w: %s has no signature %q (has %v)", ErrInput, m.dir, sig, sortedKeys(m.sigs))
	}
	fetches := make([]tf.Output, len(outputs))
	for i, name := range outputs {
		t, ok := s.Outputs[name]
		if !ok {
			return nil, fmt.Errorf("%w: signature %q has no output %q (has %v)", ErrInput, sig, name, sortedKeys(s.Outputs))
		}
		if t.DType != "float32" {
			return nil, fmt.Errorf("%w: signature %q output %q is %s, not float32", ErrInput, sig, name, t.DType)
		}
		fetches[i] = t.op
	}
	if len(inputs) != len(s.Inputs) {
		return nil, fmt.Errorf("%w: signature %q takes inputs %v, got %d", ErrInput, sig, s.inKeys, len(inputs))
	}
	rows := -1
	for _, key := range s.inKeys {
		b, ok := inputs[key]
		if !ok {
			return nil, fmt.Errorf("%w: signature %q has no input %q (has %v)", ErrInput, sig, unknownKey(inputs, s.Inputs), s.inKeys)
		}
		t := s.Inputs[key]
		if t.DType != "float32" {
			return nil, fmt.Errorf("%w: signature %q input %q is %s, not float32", ErrInput, sig, key, t.DType)
		}
		if err := b.check(); err != nil {
			return nil, fmt.Errorf("signature %q input %q: %w", sig, key, err)
		}
		if !shapeCompatible(t.Shape, b.Shape) {
			return nil, fmt.Errorf("%w: signature %q input %q wants shape %v, got %v", ErrInput, sig, key, t.Shape, b.Shape)
		}
		// Several inputs may differ in their first dimension (verify takes
		// [N,D] and [M,D]); only a single input is split into batches.
		rows = max(rows, b.Rows())
	}
	step := rows
	if m.maxBatch > 0 && m.maxBatch < rows && len(inputs) == 1 {
		step = m.maxBatch
	}
	if step == 0 {
		step = 1
	}
	results := make([]Float32Batch, len(outputs))
	for i := range results {
		if i < len(dst) {
			results[i].Data = dst[i][:0]
		}
	}
	for start := 0; start < rows || (rows == 0 && start == 0); start += step {
		end := min(start+step, rows)
		fs, err := m.feeds(&s, inputs, start, end, step != rows)
		if err != nil {
			return nil, err
		}
		made := fs.made // C bytes of this run's tensors, freed only by finalizers
		out, err := m.saved.Session.Run(fs.feeds, fetches, nil)
		if err != nil {
			m.release(fs)
			return nil, fmt.Errorf("run %s signature %q: %w", filepath.Base(m.dir), sig, err)
		}
		for i, t := range out {
			made += tensorBytes(t)
			r := &results[i]
			var shape []int64
			if r.Data, shape, err = appendFloat32(r.Data, t); err != nil {
				m.release(fs)
				return nil, fmt.Errorf("run %s signature %q output %q: %w", filepath.Base(m.dir), sig, outputs[i], err)
			}
			if r.Shape == nil {
				r.Shape = shape
			} else {
				r.Shape[0] += shape[0]
			}
		}
		// Only now, with every output copied out, may another run write
		// into these input tensors: an output can share its input's memory
		// (an identity or a reshape in the graph).
		m.release(fs)
		noteTensorGarbage(made)
		if rows == 0 {
			break
		}
	}
	return results, nil
}

// unknownKey is a key of inputs that want lacks, for an error message.
func unknownKey[V, W any](inputs map[string]V, want map[string]W) string {
	for _, k := range sortedKeys(inputs) {
		if _, ok := want[k]; !ok {
			return k
		}
	}
	return ""
}

// TensorFlow tensors live in C memory that graft frees only in finalizers,
// which run after a Go garbage collection; the Go collector does not see
// that memory. With the per-frame Go buffers reused, a frame leaves ~13 kB
// of Go garbage but ~0.5 MB of dead tensors, so collections came ~40 times
// less often and RSS grew by ~300 MiB (docs/benchmarks.md, "Memory over
// time"). So the package counts the bytes of the tensors it makes and asks
// for a collection, in the background, every tensorGarbageBudget bytes.
const tensorGarbageBudget = 8 << 20

var (
	tensorGarbage atomic.Int64
	tensorGC      atomic.Bool // a collection asked for by this package is running
	tensorGCs     atomic.Int64
)

func noteTensorGarbage(n int64) {
	if tensorGarbage.Add(n) < tensorGarbageBudget || !tensorGC.CompareAndSwap(false, true) {
		return
	}
	tensorGarbage.Store(0)
	go func() {
		runtime.GC()
		tensorGCs.Add(1)
		tensorGC.Store(false)
	}()
}

func tensorBytes(t *tf.Tensor) int64 {
	n := int64(4) // float32; the only dtype this package feeds or fetches
	for _, d := range t.Shape() {
		n *= d
	}
	return n
}

func newFloat32Tensor(b Float32Batch) (*tf.Tensor, error) {
	var raw []byte
	if len(b.Data) > 0 {
		raw = unsafe.Slice((*byte)(unsafe.Pointer(&b.Data[0])), len(b.Data)*4)
	}
	t, err := tf.ReadTensor(tf.Float, b.Shape, &byteReader{raw})
	if err != nil {
		return nil, fmt.Errorf("make tensor of shape %v: %w", b.Shape, err)
	}
	return t, nil
}

// byteReader reads a byte slice once; ReadTensor copies it straight into the
// tensor's buffer.
type byteReader struct{ b []byte }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// appendFloat32 appends the values of the float32 tensor t to dst (growing
// it only when its capacity is short) and returns them with t's shape ([1]
// for a scalar). graft gives no view of a tensor's memory, so this is the
// one copy out of TensorFlow.
func appendFloat32(dst []float32, t *tf.Tensor) ([]float32, []int64, error) {
	if t.DataType() != tf.Float {
		return dst, nil, fmt.Errorf("dtype %s, want float32", dtypeName(t.DataType()))
	}
	shape := t.Shape() // t's own slice; t is dropped after this call
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	old := len(dst)
	dst = slices.Grow(dst, int(n))[:old+int(n)]
	add := dst[old:]
	w := &floatWriter{dst: unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(add))), len(add)*4)}
	if _, err := t.WriteContentsTo(w); err != nil {
		return dst[:old], nil, err
	}
	if w.n != len(w.dst) {
		return dst[:old], nil, fmt.Errorf("tensor of shape %v gave %d bytes, want %d", shape, w.n, len(w.dst))
	}
	if len(shape) == 0 {
		shape = []int64{1}
	}
	return dst, shape, nil
}

type floatWriter struct {
	dst []byte
	n   int
}

func (w *floatWriter) Write(p []byte) (int, error) {
	if len(p) > len(w.dst)-w.n {
		return 0, io.ErrShortWrite
	}
	w.n += copy(w.dst[w.n:], p)
	return len(p), nil
}

func dtypeName(dt tf.DataType) string {
	switch dt {
	case tf.Float:
		return "float32"
	case tf.Double:
		return "float64"
	case tf.Half:
		return "float16"
	case tf.Int32:
		return "int32"
	case tf.Int64:
		return "int64"
	case tf.Uint8:
		return "uint8"
	case tf.Int8:
		return "int8"
	case tf.Bool:
		return "bool"
	case tf.String:
		return "string"
	default:
		return fmt.Sprintf("dtype(%d)", int(dt))
	}
}
