package benchcpu

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Timer measures the CPU time of the current thread.
type Timer struct{ start time.Duration }

func threadCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Start locks the goroutine to its thread and starts timing; call it right
// after b.ResetTimer and Stop after the loop.
func Start() Timer {
	runtime.LockOSThread()
	return Timer{start: threadCPU()}
}

// Stop reports "cpu-ms/op" and "cpu-frames/s" (frames per CPU-second).
func (t Timer) Stop(b *testing.B) {
	d := threadCPU() - t.start
	runtime.UnlockOSThread()
	if b.N > 0 && d > 0 {
		per := d.Seconds() / float64(b.N)
		b.ReportMetric(per*1e3, "cpu-ms/op")
		b.ReportMetric(1/per, "cpu-frames/s")
	}
}
