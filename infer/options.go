package infer

import (
	"errors"
	"fmt"

	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// Options configures the TensorFlow session a model runs in.
type Options struct {
	// IntraOpThreads and InterOpThreads size TensorFlow's thread pools;
	// 0 lets TensorFlow choose (one per core).
	IntraOpThreads int
	InterOpThreads int
	// MaxBatch splits single-input runs into batches of at most this many
	// rows; 0 runs any batch whole.
	MaxBatch int
	// GPU settings; ignored by the CPU-only library.
	GPU GPUOptions
	// CPUOnly hides every GPU from the session.
	CPUOnly bool
	// FreshInputTensors makes new input tensors on every run, as before
	// issue 17, instead of copying inputs into tensors kept from an
	// earlier run of the same shape (feeds.go). For benchmarks comparing
	// the two; results are the same.
	FreshInputTensors bool
}

// GPUOptions are TensorFlow's GPUOptions that matter on a gate device.
type GPUOptions struct {
	// VisibleDevices is a comma-separated list of GPU ids, e.g. "0".
	VisibleDevices string
	// AllowGrowth allocates GPU memory as needed instead of all at start.
	AllowGrowth bool
	// MemoryFraction caps the share of each GPU's memory (0 = no cap).
	MemoryFraction float64
}

// ErrOptions is wrapped by invalid session options.
var ErrOptions = errors.New("invalid session options")

// Validate rejects options TensorFlow would reject later or misread.
func (o Options) Validate() error {
	switch {
	case o.IntraOpThreads < 0 || o.IntraOpThreads > 1024:
		return fmt.Errorf("%w: intra-op threads %d not in 0..1024", ErrOptions, o.IntraOpThreads)
	case o.InterOpThreads < 0 || o.InterOpThreads > 1024:
		return fmt.Errorf("%w: inter-op threads %d not in 0..1024", ErrOptions, o.InterOpThreads)
	case o.MaxBatch < 0:
		return fmt.Errorf("%w: max batch %d is negative", ErrOptions, o.MaxBatch)
	case o.GPU.MemoryFraction < 0 || o.GPU.MemoryFraction > 1:
		return fmt.Errorf("%w: GPU memory fraction %g not in [0,1]", ErrOptions, o.GPU.MemoryFraction)
	}
	return nil
}

// ConfigProto serialises the options as a tensorflow.ConfigProto, the bytes
// TF_SetConfig takes.
func (o Options) ConfigProto() ([]byte, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	cfg := &corepb.ConfigProto{
		IntraOpParallelismThreads: int32(o.IntraOpThreads),
		InterOpParallelismThreads: int32(o.InterOpThreads),
		GpuOptions: &corepb.GPUOptions{
			VisibleDeviceList:           o.GPU.VisibleDevices,
			AllowGrowth:                 o.GPU.AllowGrowth,
			PerProcessGpuMemoryFraction: o.GPU.MemoryFraction,
		},
	}
	if o.CPUOnly {
		cfg.DeviceCount = map[string]int32{"GPU": 0}
	}
	b, err := proto.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode session config: %w", err)
	}
	return b, nil
}
