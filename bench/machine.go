package bench

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// ErrConfig is wrapped by the errors of a benchmark's Config: a bad
// command line rather than a failed measurement.
var ErrConfig = errors.New("bad benchmark configuration")

// Build names the software under test.
type Build struct {
	Facegate   string // facegate's version
	TensorFlow string // libtensorflow's version
}

// Machine describes where a benchmark ran.
type Machine struct {
	CPU          string     `json:"cpu"`
	CPUs         int        `json:"cpus"`
	GOOS         string     `json:"goos"`
	GOARCH       string     `json:"goarch"`
	Go           string     `json:"go"`
	TensorFlow   string     `json:"libtensorflow"`
	Facegate     string     `json:"facegate"`
	Start        time.Time  `json:"start"`
	End          time.Time  `json:"end"`
	LoadavgStart [3]float64 `json:"loadavg_start"`
	LoadavgEnd   [3]float64 `json:"loadavg_end"`
}

// NewMachine describes this machine and starts the clock.
func NewMachine(b Build) Machine {
	return Machine{
		CPU: cpuModel(), CPUs: runtime.NumCPU(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
		Go: runtime.Version(), TensorFlow: b.TensorFlow, Facegate: b.Facegate,
		Start: time.Now().UTC(), LoadavgStart: Loadavg(),
	}
}

// Finish stops the clock.
func (m *Machine) Finish() { m.End, m.LoadavgEnd = time.Now().UTC(), Loadavg() }

// Describe is one line for the end of a benchmark's output.
func (m *Machine) Describe() string {
	return fmt.Sprintf("%s, %d CPUs, %s, libtensorflow %s; load %.2f %.2f %.2f -> %.2f %.2f %.2f",
		m.CPU, m.CPUs, m.Go, m.TensorFlow, m.LoadavgStart[0], m.LoadavgStart[1], m.LoadavgStart[2],
		m.LoadavgEnd[0], m.LoadavgEnd[1], m.LoadavgEnd[2])
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// Loadavg is the 1, 5 and 15 minute load average (zeros where
// /proc/loadavg is missing).
func Loadavg() [3]float64 {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	f := strings.Fields(string(b))
	for i := 0; i < 3 && i < len(f); i++ {
		l[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return l
}
