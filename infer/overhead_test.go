package infer

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	tf "github.com/wamuir/graft/tensorflow"
)

// BenchmarkCallOverhead measures what facegate's Go code adds to a
// TensorFlow call (issue 17): each iteration makes one RunFloat32 call and
// one bare Session.Run of the same signature on feeds made beforehand, back
// to back, so load on the machine falls on both alike. Reported per call:
// the median of RunFloat32 ("run-us"), of the bare Session.Run ("session-us":
// TF_SessionRun and graft's wrapping of the outputs) and of the difference
// of each pair ("overhead-us": validation, the input copy or fresh tensor,
// the output copy, the garbage accounting). Input tensors are kept between
// calls ("reused", the default) or made fresh ("fresh", the path before).
//
//	source scripts/env.sh && go test -run '^$' -bench CallOverhead -benchtime 200x ./infer/
func BenchmarkCallOverhead(b *testing.B) {
	for _, name := range []string{"blazeface-short", "dlib-resnet-v1", "sface-2021dec", "minifasnet-v2", "minifasnet-v1se"} {
		dir := TestModelDir(b, name)
		for _, mode := range []string{"reused", "fresh"} {
			m, err := Load(dir, Options{IntraOpThreads: runtime.NumCPU(), InterOpThreads: 1, CPUOnly: true, FreshInputTensors: mode == "fresh"})
			if err != nil {
				b.Fatal(err)
			}
			in := m.Manifest().Input
			sig := m.sigs[in.Signature]
			fetches := make([]tf.Output, len(sig.outKeys))
			for i, k := range sig.outKeys {
				fetches[i] = sig.Outputs[k].op
			}
			per := in.Height * in.Width * in.Channels
			rng := rand.New(rand.NewPCG(1, 2))
			data := make([]float32, 16*per)
			for i := range data {
				data[i] = 255 * rng.Float32()
			}
			for _, n := range []int{1, 16} {
				input := map[string]Float32Batch{in.Tensor: {
					Shape: []int64{int64(n), int64(in.Height), int64(in.Width), int64(in.Channels)}, Data: data[:n*per]}}
				b.Run(name+"/batch="+strconv.Itoa(n)+"/"+mode, func(b *testing.B) {
					bare, err := m.feeds(&sig, input, 0, n, false)
					if err != nil {
						b.Fatal(err)
					}
					var run, sess, diff []float64
					for i := 0; i < 2 || b.Loop(); i++ {
						t0 := time.Now()
						if _, err := m.RunFloat32(in.Signature, input); err != nil {
							b.Fatal(err)
						}
						t1 := time.Now()
						if _, err := m.saved.Session.Run(bare.feeds, fetches, nil); err != nil {
							b.Fatal(err)
						}
						t2 := time.Now()
						if i >= 2 { // two untimed warm-up pairs
							r, s := float64(t1.Sub(t0).Nanoseconds())/1e3, float64(t2.Sub(t1).Nanoseconds())/1e3
							run, sess, diff = append(run, r), append(sess, s), append(diff, r-s)
						}
					}
					b.ReportMetric(median(run), "run-us")
					b.ReportMetric(median(sess), "session-us")
					b.ReportMetric(median(diff), "overhead-us")
				})
			}
			m.Close()
		}
	}
}

func median(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := slices.Clone(x)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkInputTensor isolates the input side of a call, no TensorFlow
// run: a fresh tensor per call (TF_AllocateTensor, the copy, a finalizer,
// and the forced collections of the tensor garbage budget) against the copy
// into a kept tensor, for the input sizes of the per-frame models at
// batch 1 (128x128 detector, 150x150 and 112x112 embedders, 80x80 PAD).
func BenchmarkInputTensor(b *testing.B) {
	for _, size := range []int64{128, 150, 112, 80} {
		in := Float32Batch{Shape: []int64{1, size, size, 3}, Data: make([]float32, 3*size*size)}
		b.Run(strconv.Itoa(int(size))+"/fresh", func(b *testing.B) {
			b.SetBytes(int64(4 * len(in.Data)))
			for b.Loop() {
				t, err := newFloat32Tensor(in)
				if err != nil {
					b.Fatal(err)
				}
				noteTensorGarbage(tensorBytes(t))
			}
		})
		b.Run(strconv.Itoa(int(size))+"/reused", func(b *testing.B) {
			t, err := newFloat32Tensor(in)
			if err != nil {
				b.Fatal(err)
			}
			view, ok := tensorView(t, len(in.Data))
			if !ok {
				b.Fatal("no view of the tensor's memory")
			}
			b.SetBytes(int64(4 * len(in.Data)))
			for b.Loop() {
				copy(view, in.Data)
			}
			runtime.KeepAlive(t)
		})
	}
}
