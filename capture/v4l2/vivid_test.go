package v4l2

// The real-driver test. TestVivid (host side) builds this package's test
// binary statically, packs it with busybox and Debian's vivid modules into
// an initramfs, boots Debian's kernel in qemu (TCG; KVM guests hang on the
// CI machines) and checks the result TestVividGuest prints on the serial
// console. TestVividGuest runs only inside that guest.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/facegate/facegate/capture"
)

const guestEnv = "FACEGATE_VIVID_GUEST"

// vividParams: one instance with a video capture node (/dev/video0) and a
// video output node (/dev/video1, used as "not a capture device").
const vividParams = "n_devs=1 node_types=0x101"

// skipOrFail skips with one line outside CI and fails under CI=true.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("vivid test cannot run in CI: %s", msg)
	}
	t.Skipf("vivid qemu test skipped: %s (run make deps; see docs/capture.md)", msg)
}

// kernelDir finds the kernel fetched by capture/scripts/vivid-kernel.sh.
func kernelDir() string {
	if d := os.Getenv("FACEGATE_VIVID_KERNEL_DIR"); d != "" {
		return d
	}
	cache := os.Getenv("FACEGATE_CACHE")
	if cache == "" {
		if base, err := os.UserCacheDir(); err == nil {
			cache = filepath.Join(base, "facegate")
		}
	}
	return filepath.Join(cache, "kernel", "current")
}

func TestVivid(t *testing.T) {
	if os.Getenv(guestEnv) != "" {
		t.Skip("inside the guest")
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		skipOrFail(t, "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)")
	}
	busybox := "/bin/busybox"
	if err := checkStatic(busybox); err != nil {
		skipOrFail(t, "%v (apt-get install busybox-static)", err)
	}
	kdir := kernelDir()
	modules, err := os.ReadFile(filepath.Join(kdir, "modules", "order"))
	if err != nil {
		skipOrFail(t, "no vivid kernel in %s (make deps fetches it): %v", kdir, err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		skipOrFail(t, "go tool not in PATH")
	}
	t0 := time.Now()
	work := t.TempDir()
	guest := filepath.Join(work, "guest.test")
	build := exec.Command(goBin, "test", "-c", "-o", guest, "-ldflags=-s -w", ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build static guest binary: %v\n%s", err, out)
	}
	if err := checkStatic(guest); err != nil {
		t.Fatal(err)
	}
	var initrd bytes.Buffer
	cw := newCpio(&initrd)
	for _, d := range []string{"bin", "dev", "proc", "sys", "tmp", "modules"} {
		cw.dir(d)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(cw.copyFile("bin/busybox", busybox, 0o755))
	must(cw.copyFile("guest.test", guest, 0o755))
	var mods []string
	for _, m := range strings.Fields(string(modules)) {
		must(cw.copyFile("modules/"+m+".ko", filepath.Join(kdir, "modules", m+".ko"), 0o644))
		mods = append(mods, m)
	}
	cw.file("init", 0o755, []byte(fmt.Sprintf(`#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in %s; do
  p=""; [ "$m" = vivid ] && p="%s"
  insmod /modules/$m.ko $p || echo "VIVID-INSMOD-FAILED $m"
done
echo VIVID-GUEST-START
%s=1 VIVID_PARAMS="%s" /guest.test -test.run '^TestVividGuest$' -test.v -test.timeout 80s
echo "VIVID-GUEST-EXIT $?"
poweroff -f
`, strings.Join(mods, " "), vividParams, guestEnv, vividParams)))
	must(cw.close())
	initrdPath := filepath.Join(work, "initrd.cpio")
	must(os.WriteFile(initrdPath, initrd.Bytes(), 0o644))
	tBuild := time.Since(t0)

	ctx, cancel := context.WithTimeout(context.Background(), 110*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu,
		"-accel", "tcg", "-m", "512", "-smp", "1", "-nographic", "-no-reboot",
		"-kernel", filepath.Join(kdir, "vmlinuz"), "-initrd", initrdPath,
		"-append", "console=ttyS0 rdinit=/init panic=-1 loglevel=4 mitigations=off")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.Stdin = nil
	t1 := time.Now()
	err = cmd.Run()
	tRun := time.Since(t1)
	log := out.String()
	if ctx.Err() != nil {
		t.Fatalf("qemu timed out after %v; console:\n%s", tRun, log)
	}
	if err != nil {
		t.Fatalf("qemu: %v; console:\n%s", err, log)
	}
	if strings.Contains(log, "VIVID-INSMOD-FAILED") || !strings.Contains(log, "VIVID-GUEST-START") {
		t.Fatalf("guest did not load vivid; console:\n%s", log)
	}
	if !strings.Contains(log, "--- PASS: TestVividGuest") || !strings.Contains(log, "VIVID-GUEST-EXIT 0") {
		t.Fatalf("guest test failed; console:\n%s", log)
	}
	if dst := os.Getenv("FACEGATE_VIVID_RECORD"); dst != "" {
		if err := saveFrame(log, dst); err != nil {
			t.Fatal(err)
		}
		t.Logf("recorded a vivid frame into %s", dst)
	}
	// Show what the guest measured.
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); strings.Contains(l, "vivid: ") {
			t.Log(l[strings.Index(l, "vivid: "):])
		}
	}
	t.Logf("build+initramfs %v, qemu boot+test %v", tBuild.Round(time.Millisecond), tRun.Round(time.Millisecond))
}

// checkStatic makes sure a binary can run in an initramfs without libc.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked", path)
		}
	}
	return nil
}

// cpioWriter writes a newc ("070701") archive, the initramfs format.
type cpioWriter struct {
	w   io.Writer
	ino int
	err error
}

func newCpio(w io.Writer) *cpioWriter { return &cpioWriter{w: w, ino: 1} }

func (c *cpioWriter) entry(name string, mode uint32, data []byte) {
	if c.err != nil {
		return
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	c.ino++
	buf := []byte(hdr + name + "\x00")
	for len(buf)%4 != 0 {
		buf = append(buf, 0)
	}
	buf = append(buf, data...)
	for len(buf)%4 != 0 {
		buf = append(buf, 0)
	}
	_, c.err = c.w.Write(buf)
}

func (c *cpioWriter) dir(name string)                         { c.entry(name, 0o040755, nil) }
func (c *cpioWriter) file(name string, perm uint32, b []byte) { c.entry(name, 0o100000|perm, b) }
func (c *cpioWriter) copyFile(name, src string, perm uint32) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	c.file(name, perm, b)
	return c.err
}
func (c *cpioWriter) close() error { c.entry("TRAILER!!!", 0, nil); return c.err }

// ---- guest side ----

func TestVividGuest(t *testing.T) {
	if os.Getenv(guestEnv) == "" {
		t.Skip("runs only inside the qemu guest started by TestVivid")
	}
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelInfo}))

	t.Run("formats", func(t *testing.T) {
		dev, err := OpenWebcam("/dev/video0")
		if err != nil {
			t.Fatal(err)
		}
		defer dev.Close()
		var names []string
		var yuyv *FormatInfo
		fs := ListFormats(dev)
		for i, f := range fs {
			names = append(names, f.Format.String())
			if f.Format == capture.FormatYUYV {
				yuyv = &fs[i]
			}
		}
		t.Logf("vivid: formats %s", strings.Join(names, " "))
		if yuyv == nil {
			t.Fatal("vivid offers no YUYV")
		}
		t.Logf("vivid: YUYV sizes %s", sizesString(yuyv.Sizes))
		if _, err := Choose(fs, "MJPEG", 1920, 1080); err == nil || !strings.Contains(err.Error(), "device offers") {
			t.Errorf("MJPEG on vivid: %v", err)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		d, err := OpenWebcam("/dev/video1") // vivid's output node
		if err == nil {
			d.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "not a video capture device") {
			t.Errorf("/dev/video1 (output node): %v", err)
		}
		_, err = OpenWebcam("/dev/video7")
		if err == nil || !strings.Contains(err.Error(), "no such device") {
			t.Errorf("/dev/video7: %v", err)
		}
		c := capture.DefaultConfig()
		c.Format, c.Width, c.Height = "YUYV", 100, 100
		if _, err := Open(c, Options{Logger: logger}); err == nil || !strings.Contains(err.Error(), "unsupported camera size") {
			t.Errorf("YUYV 100x100: %v", err)
		}
		c.Format, c.Width, c.Height = "MJPEG", 1280, 720
		if _, err := Open(c, Options{Logger: logger}); err == nil || !strings.Contains(err.Error(), "unsupported camera format") {
			t.Errorf("MJPEG: %v", err)
		}
	})

	for _, tc := range []struct {
		format string
		w, h   int // configured maximum
		want   string
	}{
		{"YUYV", 640, 480, "YUYV 640x480"},
		{"YUYV", 400, 300, "YUYV 320x180"},
		{"RGB3", 640, 400, "RGB3 640x360"},
		{"auto", 1280, 720, "YUYV 1280x720"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			c := capture.DefaultConfig()
			c.Format, c.Width, c.Height = tc.format, tc.w, tc.h
			m := capture.NewMetrics()
			t0 := time.Now()
			s, err := Open(c, Options{Logger: logger, Metrics: m})
			if err != nil {
				t.Fatal(err)
			}
			if s.Mode().String() != tc.want {
				t.Fatalf("mode %s, want %s", s.Mode(), tc.want)
			}
			af, err := QueryFormat("/dev/video0")
			if err != nil || af.Width != s.Mode().Width || af.Height != s.Mode().Height || capture.PixelFormat(af.PixelFormat) != s.Mode().Format {
				t.Fatalf("G_FMT %+v (%v) disagrees with mode %s", af, err, s.Mode())
			}
			if row := s.Mode().Format.FrameSize(af.Width, 1); af.BytesPerLine != row {
				t.Logf("vivid: %s pads rows: bytesperline %d", tc.want, af.BytesPerLine)
			}
			l := capture.NewLatest(s, capture.LatestOptions{Metrics: m, Decode: true, Logger: logger})
			defer l.Close()
			var last uint64
			for i := 0; i < 3; i++ {
				f := nextFrame(t, l)
				if f.Seq <= last {
					t.Fatalf("seq %d after %d", f.Seq, last)
				}
				last = f.Seq
				checkBars(t, f)
				if i == 0 && f.Format == capture.FormatYUYV && f.Width == 320 {
					printFrame(f) // recorded into testdata with FACEGATE_VIVID_RECORD
				}
			}
			t.Logf("vivid: %s: 3 frames in %v, decode mean %v", tc.want, time.Since(t0).Round(time.Millisecond), m.Snapshot().DecodeMean)
		})
	}

	t.Run("unplug", func(t *testing.T) {
		c := capture.DefaultConfig()
		c.Format, c.Width, c.Height = "YUYV", 640, 480
		c.ReconnectMax = 400 * time.Millisecond
		m := capture.NewMetrics()
		s, err := Open(c, Options{Logger: logger, Metrics: m, ReconnectMin: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		l := capture.NewLatest(s, capture.LatestOptions{Metrics: m, Decode: true, Logger: logger})
		defer l.Close()
		var last uint64
		for i := 0; i < 3; i++ {
			last = nextFrame(t, l).Seq
		}
		// The open, streaming file pins the module, as with a real
		// driver: rmmod is refused while we stream.
		if out, err := exec.Command("rmmod", "vivid").CombinedOutput(); err == nil {
			t.Logf("vivid: rmmod while streaming unexpectedly succeeded: %s", out)
		} else {
			t.Logf("vivid: rmmod while streaming refused as expected: %s", strings.TrimSpace(string(out)))
		}
		// Unplug: unbind the driver from its device (what a USB
		// disconnect does), then remove the module once we let go.
		t0 := time.Now()
		unbind(t)
		waitUntil(t, "outage reported", func() bool { return m.Snapshot().Outages == 1 })
		if m.Snapshot().Connected {
			t.Fatal("metrics say connected during the outage")
		}
		waitUntil(t, "rmmod vivid", func() bool { return exec.Command("rmmod", "vivid").Run() == nil })
		if _, err := os.Stat("/dev/video0"); err == nil {
			t.Fatal("/dev/video0 still exists after rmmod")
		}
		time.Sleep(time.Second) // stay unplugged for a while
		args := append([]string{"/modules/vivid.ko"}, strings.Fields(os.Getenv("VIVID_PARAMS"))...)
		if out, err := exec.Command("insmod", args...).CombinedOutput(); err != nil {
			t.Fatalf("insmod vivid: %v %s", err, out)
		}
		f := nextFrame(t, l)
		outage := time.Since(t0)
		if f.Seq <= last {
			t.Fatalf("seq after replug %d, before %d: not increasing", f.Seq, last)
		}
		checkBars(t, f)
		for i := 0; i < 3; i++ {
			g := nextFrame(t, l)
			if g.Seq <= f.Seq {
				t.Fatalf("seq %d after %d", g.Seq, f.Seq)
			}
			f = g
		}
		snap := m.Snapshot()
		if snap.Outages != 1 || snap.Reconnects != 1 || !snap.Connected {
			t.Fatalf("metrics after replug %+v", snap)
		}
		t.Logf("vivid: unplug/replug: outage %v, seq %d -> %d, frames in %d out %d dropped %d", outage.Round(time.Millisecond), last, f.Seq, snap.FramesIn, snap.FramesOut, snap.Dropped)
	})
}

// printFrame writes a raw frame, gzipped and base64-encoded, as one
// console line.
func printFrame(f capture.Frame) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(f.Data)
	zw.Close()
	fmt.Printf("VIVID-FRAME %s %d %d %s\n", f.Format, f.Width, f.Height, base64.StdEncoding.EncodeToString(buf.Bytes()))
}

// saveFrame stores the frame printed by printFrame as
// dst/vivid_<fmt>_<w>x<h>.raw.gz.
func saveFrame(console, dst string) error {
	for _, l := range strings.Split(console, "\n") {
		fields := strings.Fields(strings.TrimSpace(l))
		if len(fields) != 5 || fields[0] != "VIVID-FRAME" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(fields[4])
		if err != nil {
			return fmt.Errorf("recorded frame: %w", err)
		}
		name := fmt.Sprintf("vivid_%s_%sx%s.raw.gz", strings.ToLower(fields[1]), fields[2], fields[3])
		return os.WriteFile(filepath.Join(dst, name), b, 0o644)
	}
	return errors.New("no VIVID-FRAME line on the console")
}

func nextFrame(t *testing.T, l *capture.Latest) capture.Frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	f, err := l.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// checkBars checks vivid's default test pattern, 75% colour bars: white,
// yellow, cyan, green, magenta, red, blue, black, sampled near the bottom
// edge (vivid's text overlay covers the top, and most of a 320x180 frame).
func checkBars(t *testing.T, f capture.Frame) {
	t.Helper()
	img := f.Image
	if img == nil || img.W != f.Width || img.H != f.Height {
		t.Fatalf("frame %d: image %v for %dx%d", f.Seq, img, f.Width, f.Height)
	}
	want := [8][3]int{{191, 191, 191}, {191, 191, 0}, {0, 191, 191}, {0, 191, 0}, {191, 0, 191}, {191, 0, 0}, {0, 0, 191}, {0, 0, 0}}
	for i, c := range want {
		x := (2*i + 1) * img.W / 16
		r, g, b := img.RGBAt(x, img.H-3)
		d := max(abs(int(r)-c[0]), abs(int(g)-c[1]), abs(int(b)-c[2]))
		if d > 24 {
			for _, y := range []int{0, img.H / 4, img.H / 2, img.H * 3 / 4, img.H - 1} {
				var row []string
				for j := 0; j < 8; j++ {
					r, g, b := img.RGBAt((2*j+1)*img.W/16, y)
					row = append(row, fmt.Sprintf("%d,%d,%d", r, g, b))
				}
				t.Logf("row %d: %s", y, strings.Join(row, " "))
			}
			t.Fatalf("frame %d %s %dx%d: bar %d at x=%d is %d,%d,%d, want ~%v", f.Seq, f.Format, img.W, img.H, i, x, r, g, b, c)
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func unbind(t *testing.T) {
	t.Helper()
	devs, _ := filepath.Glob("/sys/bus/platform/drivers/vivid/vivid*")
	if len(devs) == 0 {
		t.Fatal("no vivid platform device in /sys/bus/platform/drivers/vivid")
	}
	name := filepath.Base(devs[0])
	if err := os.WriteFile("/sys/bus/platform/drivers/vivid/unbind", []byte(name), 0o200); err != nil {
		t.Fatalf("unbind %s: %v", name, err)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
