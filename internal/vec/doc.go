// Package vec holds the float32 kernels of 1:N matching: dot products of one
// probe with many contiguous rows, and a plain sum over the same bytes that
// benchmarks use as the memory-bandwidth bound of a gallery scan.
//
// On amd64 with AVX2 and FMA the kernels are assembly; elsewhere, and for
// lengths that are not a multiple of 8, they are Go loops with independent
// accumulators. Both paths are tested against a float64 reference.
package vec
