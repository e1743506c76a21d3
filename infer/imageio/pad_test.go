package imageio

import "testing"

func TestPad(t *testing.T) {
	m := NewRGB(2, 1)
	copy(m.Pix, []uint8{10, 20, 30, 40, 50, 60})
	e, err := Pad(m, 2, PadEdge)
	if err != nil {
		t.Fatal(err)
	}
	if e.W != 6 || e.H != 5 {
		t.Fatalf("padded size %dx%d, want 6x5", e.W, e.H)
	}
	px := func(m *RGB, x, y int) [3]uint8 { o := m.Offset(x, y); return [3]uint8(m.Pix[o : o+3]) }
	for _, c := range []struct {
		x, y int
		want [3]uint8
	}{{0, 0, [3]uint8{10, 20, 30}}, {2, 2, [3]uint8{10, 20, 30}}, {3, 2, [3]uint8{40, 50, 60}}, {5, 4, [3]uint8{40, 50, 60}}, {2, 4, [3]uint8{10, 20, 30}}} {
		if got := px(e, c.x, c.y); got != c.want {
			t.Errorf("edge pad (%d,%d) = %v, want %v", c.x, c.y, got, c.want)
		}
	}
	b, err := Pad(m, 1, PadBlack)
	if err != nil {
		t.Fatal(err)
	}
	if got := px(b, 1, 1); got != [3]uint8{10, 20, 30} {
		t.Errorf("black pad inside = %v", got)
	}
	if got := px(b, 0, 1); got != [3]uint8{} {
		t.Errorf("black pad border = %v, want zeros", got)
	}
	if got := px(b, 2, 0); got != [3]uint8{} {
		t.Errorf("black pad border above = %v, want zeros", got)
	}
	if _, err := Pad(m, -1, PadEdge); err == nil {
		t.Error("negative pad accepted")
	}
	if _, err := Pad(NewRGB(0, 0), 1, PadEdge); err == nil {
		t.Error("empty image padded")
	}
}
