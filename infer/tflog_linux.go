package infer

// Importing "C" makes infer a cgo package, so that tflog_linux.c is compiled.

import "C"

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// captureStderr points file descriptor 2 (Go's os.Stderr and C's stderr
// alike) at a pipe until stop is called; stop restores it and returns what
// was written meanwhile.
func captureStderr() (stop func() []byte, err error) {
	saved, err := syscall.Dup(2)
	if err != nil {
		return nil, fmt.Errorf("capture stderr: %w", err)
	}
	syscall.CloseOnExec(saved)
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		syscall.Close(saved)
		return nil, fmt.Errorf("capture stderr: %w", err)
	}
	if err := syscall.Dup3(p[1], 2, 0); err != nil {
		syscall.Close(saved)
		syscall.Close(p[0])
		syscall.Close(p[1])
		return nil, fmt.Errorf("capture stderr: %w", err)
	}
	syscall.Close(p[1])
	r := os.NewFile(uintptr(p[0]), "stderr-capture")
	var (
		mu   sync.Mutex
		buf  bytes.Buffer
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		b := make([]byte, 32<<10)
		for {
			n, err := r.Read(b)
			mu.Lock()
			buf.Write(b[:n])
			mu.Unlock()
			if err == io.EOF || err != nil {
				return
			}
		}
	}()
	return func() []byte {
		_ = syscall.Dup3(saved, 2, 0)
		syscall.Close(saved)
		select {
		case <-done:
		case <-time.After(captureWait):
		}
		r.Close()
		mu.Lock()
		defer mu.Unlock()
		return bytes.Clone(buf.Bytes())
	}, nil
}
