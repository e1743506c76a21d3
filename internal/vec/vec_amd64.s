#include "textflag.h"

// func dotRowsAsm(q, rows *float32, dim, n int, out *float32)
// out[i] = q . rows[i*dim : (i+1)*dim] for i < n; dim > 0, dim % 8 == 0.
// Two 8-lane FMA accumulators per row (even and odd 8-value chunks), summed
// and reduced exactly as dotRows4Asm reduces each of its rows, so that a row
// scores the same through either kernel.
TEXT ·dotRowsAsm(SB), NOSPLIT, $0-40
	MOVQ q+0(FP), SI
	MOVQ rows+8(FP), DI
	MOVQ dim+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ out+32(FP), R8
	MOVQ DX, R9
	ANDQ $-16, R9

row:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	XORQ   AX, AX
	CMPQ   R9, $0
	JEQ    tail8

loop16:
	VMOVUPS     (SI)(AX*4), Y4
	VMOVUPS     32(SI)(AX*4), Y5
	VFMADD231PS (DI)(AX*4), Y4, Y0
	VFMADD231PS 32(DI)(AX*4), Y5, Y1
	ADDQ        $16, AX
	CMPQ        AX, R9
	JLT         loop16

tail8:
	CMPQ        AX, DX
	JGE         reduce
	VMOVUPS     (SI)(AX*4), Y4
	VFMADD231PS (DI)(AX*4), Y4, Y0

reduce:
	VADDPS       Y1, Y0, Y0
	VHADDPS      Y0, Y0, Y0
	VHADDPS      Y0, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VMOVSS       X0, (R8)
	ADDQ         $4, R8
	LEAQ         (DI)(DX*4), DI
	DECQ         CX
	JNZ          row
	VZEROUPPER
	RET

// func dotRows4Asm(q, rows *float32, dim, n int, out *float32)
// As dotRowsAsm for n % 4 == 0 and dim % 16 == 0, four rows at a time: each
// load of the probe serves four rows, so 10 loads feed 8 FMAs instead of 2
// loads per FMA, and eight independent accumulators keep the FMA units busy.
TEXT ·dotRows4Asm(SB), NOSPLIT, $0-40
	MOVQ q+0(FP), SI
	MOVQ rows+8(FP), DI
	MOVQ dim+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ out+32(FP), R8
	MOVQ DX, R10
	SHLQ $2, R10 // row stride in bytes

quad:
	LEAQ   (DI)(R10*1), R11
	LEAQ   (DI)(R10*2), R12
	LEAQ   (R11)(R10*2), R13
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	XORQ   AX, AX

loop4x16:
	VMOVUPS     (SI)(AX*4), Y8
	VMOVUPS     32(SI)(AX*4), Y9
	VFMADD231PS (DI)(AX*4), Y8, Y0
	VFMADD231PS 32(DI)(AX*4), Y9, Y1
	VFMADD231PS (R11)(AX*4), Y8, Y2
	VFMADD231PS 32(R11)(AX*4), Y9, Y3
	VFMADD231PS (R12)(AX*4), Y8, Y4
	VFMADD231PS 32(R12)(AX*4), Y9, Y5
	VFMADD231PS (R13)(AX*4), Y8, Y6
	VFMADD231PS 32(R13)(AX*4), Y9, Y7
	ADDQ        $16, AX
	CMPQ        AX, DX
	JLT         loop4x16

	// Per row even+odd, then pairwise within each 128-bit lane, then the
	// two lanes: out[0..3] = rows 0..3.
	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y5, Y4, Y4
	VADDPS       Y7, Y6, Y6
	VHADDPS      Y2, Y0, Y0
	VHADDPS      Y6, Y4, Y4
	VHADDPS      Y4, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VMOVUPS      X0, (R8)
	ADDQ         $16, R8
	LEAQ         (DI)(R10*4), DI
	SUBQ         $4, CX
	JNZ          quad
	VZEROUPPER
	RET

// func sumAsm(data *float32, n int) float32
// The sum of n values, n > 0, n % 32 == 0: eight 8-lane accumulators so that
// the adds never wait on each other and only loads limit the rate.
TEXT ·sumAsm(SB), NOSPLIT, $0-20
	MOVQ   data+0(FP), SI
	MOVQ   n+8(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	XORQ   AX, AX
	MOVQ   CX, DX
	ANDQ   $-64, DX
	CMPQ   DX, $0
	JEQ    tail32

loop64:
	VADDPS (SI)(AX*4), Y0, Y0
	VADDPS 32(SI)(AX*4), Y1, Y1
	VADDPS 64(SI)(AX*4), Y2, Y2
	VADDPS 96(SI)(AX*4), Y3, Y3
	VADDPS 128(SI)(AX*4), Y4, Y4
	VADDPS 160(SI)(AX*4), Y5, Y5
	VADDPS 192(SI)(AX*4), Y6, Y6
	VADDPS 224(SI)(AX*4), Y7, Y7
	ADDQ   $64, AX
	CMPQ   AX, DX
	JLT    loop64

tail32:
	CMPQ   AX, CX
	JGE    reduce
	VADDPS (SI)(AX*4), Y0, Y0
	VADDPS 32(SI)(AX*4), Y1, Y1
	VADDPS 64(SI)(AX*4), Y2, Y2
	VADDPS 96(SI)(AX*4), Y3, Y3
	ADDQ   $32, AX

reduce:
	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y5, Y4, Y4
	VADDPS       Y7, Y6, Y6
	VADDPS       Y2, Y0, Y0
	VADDPS       Y6, Y4, Y4
	VADDPS       Y4, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VMOVSS       X0, ret+16(FP)
	VZEROUPPER
	RET
