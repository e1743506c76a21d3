package vec

import "golang.org/x/sys/cpu"

// useAsm is true where the AVX2+FMA kernels can run; tests turn it off to
// check the Go loops on the same machine.
var useAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// dotRowsAsm: out[i] = q . rows[i*dim:], i < n; dim is a positive multiple of 8.
//
//go:noescape
func dotRowsAsm(q, rows *float32, dim, n int, out *float32)

// dotRows4Asm is dotRowsAsm for n % 4 == 0 and dim % 16 == 0, with the same
// arithmetic per row.
//
//go:noescape
func dotRows4Asm(q, rows *float32, dim, n int, out *float32)

// sumAsm sums n values, n a positive multiple of 32.
//
//go:noescape
func sumAsm(data *float32, n int) float32
