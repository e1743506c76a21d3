//go:build !amd64

package vec

var useAsm = false

func dotRowsAsm(q, rows *float32, dim, n int, out *float32) { panic("unreachable") }

func dotRows4Asm(q, rows *float32, dim, n int, out *float32) { panic("unreachable") }

func sumAsm(data *float32, n int) float32 { panic("unreachable") }
