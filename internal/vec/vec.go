package vec

// DotRows sets out[i] to the dot product of q with row i of rows, which holds
// len(out) rows of len(q) values each, one after another. It panics if rows
// is shorter than len(out)*len(q).
func DotRows(q, rows, out []float32) {
	dim := len(q)
	n := len(out)
	if n == 0 {
		return
	}
	if len(rows) < n*dim {
		panic("vec.DotRows: rows shorter than len(out)*len(q)")
	}
	if dim == 0 {
		clear(out)
		return
	}
	if useAsm && dim%8 == 0 {
		done := 0
		if n4 := n &^ 3; n4 > 0 && dim%16 == 0 {
			dotRows4Asm(&q[0], &rows[0], dim, n4, &out[0])
			done = n4
		}
		if done < n {
			dotRowsAsm(&q[0], &rows[done*dim], dim, n-done, &out[done])
		}
		return
	}
	for i := range out {
		out[i] = dotGeneric(q, rows[i*dim:(i+1)*dim])
	}
}

// Dot is the dot product of a and b over their common length.
func Dot(a, b []float32) float32 {
	n := min(len(a), len(b))
	if n == 0 {
		return 0
	}
	if useAsm && n%8 == 0 {
		var out float32
		dotRowsAsm(&a[0], &b[0], n, 1, &out)
		return out
	}
	return dotGeneric(a[:n], b[:n])
}

// Sum is the sum of data: a scan of the same bytes as DotRows reads from its
// rows, with no second operand and no per-row work, i.e. the bound a gallery
// scan is measured against.
func Sum(data []float32) float32 {
	if useAsm && len(data) >= 32 {
		n := len(data) &^ 31
		s := sumAsm(&data[0], n)
		for _, v := range data[n:] {
			s += v
		}
		return s
	}
	return sumGeneric(data)
}

func dotGeneric(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= len(a); i += 8 {
		x, y := a[i:i+8:i+8], b[i:i+8:i+8]
		s0 += x[0] * y[0]
		s1 += x[1] * y[1]
		s2 += x[2] * y[2]
		s3 += x[3] * y[3]
		s4 += x[4] * y[4]
		s5 += x[5] * y[5]
		s6 += x[6] * y[6]
		s7 += x[7] * y[7]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}

func sumGeneric(data []float32) float32 {
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	i := 0
	for ; i+8 <= len(data); i += 8 {
		d := data[i : i+8 : i+8]
		s0 += d[0]
		s1 += d[1]
		s2 += d[2]
		s3 += d[3]
		s4 += d[4]
		s5 += d[5]
		s6 += d[6]
		s7 += d[7]
	}
	for ; i < len(data); i++ {
		s0 += data[i]
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}
