package sources

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/facegate/facegate/capture"
	"github.com/facegate/facegate/capture/file"
	"github.com/facegate/facegate/capture/v4l2"
)

// Kind names a source type.
type Kind string

// Source kinds.
const (
	KindV4L2   Kind = "v4l2"
	KindDir    Kind = "dir"
	KindMJPEG  Kind = "mjpeg"
	KindFFmpeg Kind = "ffmpeg"
)

// Detect decides the source kind for cfg.Device: character devices and
// anything under /dev are cameras, directories are image folders, .mjpeg
// and .mjpg files are MJPEG streams, any other file goes to ffmpeg.
func Detect(device string) (Kind, error) {
	st, err := os.Stat(device)
	if strings.HasPrefix(filepath.Clean(device), "/dev/") || err == nil && st.Mode()&fs.ModeCharDevice != 0 {
		return KindV4L2, nil
	}
	if err != nil {
		return "", fmt.Errorf("camera source %s: %w", device, err)
	}
	if st.IsDir() {
		return KindDir, nil
	}
	switch strings.ToLower(filepath.Ext(device)) {
	case ".mjpeg", ".mjpg":
		return KindMJPEG, nil
	}
	return KindFFmpeg, nil
}

// Open opens the source for cfg, counting into m (may be nil).
func Open(cfg capture.Config, m *capture.Metrics, log *slog.Logger) (capture.Source, Kind, error) {
	if err := cfg.Validate(); err != nil {
		return nil, "", err
	}
	if log == nil {
		log = slog.Default()
	}
	kind, err := Detect(cfg.Device)
	if err != nil {
		return nil, "", err
	}
	fo := file.Options{FPS: cfg.FPS, Loop: cfg.Loop, Metrics: m, Logger: log}
	var src capture.Source
	switch kind {
	case KindV4L2:
		src, err = v4l2.Open(cfg, v4l2.Options{Metrics: m, Logger: log})
	case KindDir:
		src, err = file.OpenDir(cfg.Device, fo)
	case KindMJPEG:
		src, err = file.OpenMJPEG(cfg.Device, fo)
	case KindFFmpeg:
		src, err = file.OpenFFmpeg(cfg.Device, file.FFmpegOptions{Options: fo, MaxWidth: cfg.Width, MaxHeight: cfg.Height})
	}
	if err != nil {
		return nil, kind, err
	}
	return src, kind, nil
}
