"""The daemon on a file source, measured (issue 6).

Runs `facegate run` on an MJPEG clip of one face (made with ffmpeg from the
public-domain photo in testdata/) at 640x480 and at 1280x720, as fast as the
gate can take frames (FACEGATE_CAMERA_FPS=-1), with the embedded broker,
the person enrolled, and every frame a decision (AGREE 1 of 1, no cooldown)
and the sharpness check off (the clip is an upscaled still), so every
frame with the face is decided and its capture-to-event latency sampled.
Reports per size:

- startup time to READY=1 (sd_notify on a socket this script listens on),
- sustained frames per second processed (from the stats topic),
- decision latency p50/p95/p99, frame capture to event published (stats),
- CPU use (utime+stime of the daemon over the measured window / wall),
- RSS at the end and peak RSS (VmHWM).

    python bench/daemon_bench.py --bin bin/facegate --models build/models --seconds 60 --out build/bench/daemon.json
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def make_clip(path: pathlib.Path, w: int, h: int) -> None:
    """An 8 s, 10 fps MJPEG clip of the astronaut with a slow zoom."""
    subprocess.run([
        "ffmpeg", "-loglevel", "error", "-y", "-framerate", "10", "-loop", "1", "-t", "8",
        "-i", str(REPO / "testdata" / "astronaut.jpg"),
        "-vf", (f"scale={w}:{w},crop={w}:{h}:0:{(w - h) // 3},"
                f"zoompan=z='min(zoom+0.003,1.3)':x='iw/2-(iw/zoom/2)':y='ih/3-(ih/zoom/3)':d=1:s={w}x{h}:fps=10"),
        "-q:v", "4", "-f", "mjpeg", str(path)], check=True)


def proc_stat(pid: int) -> tuple[float, int, int]:
    """(cpu seconds, rss kB, peak rss kB) of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return cpu, rss, hwm


def run_one(args, w: int, h: int, threads: int, camera_fps: str, work: pathlib.Path, port: int) -> dict:
    clip = work / f"clip-{w}x{h}.mjpeg"
    if not clip.exists():
        make_clip(clip, w, h)
    state = pathlib.Path(tempfile.mkdtemp(prefix=f"state-{w}x{h}-", dir=work))
    keys = work / "keys"
    notify = state / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    sock.settimeout(0.5)
    env = dict(os.environ,
               FACEGATE_DEVICE_ID="bench", FACEGATE_STATE_DIR=str(state), FACEGATE_MODELS_DIR=args.models,
               FACEGATE_CAMERA=str(clip), FACEGATE_CAMERA_FPS=camera_fps, FACEGATE_CAMERA_LOOP="true",
               FACEGATE_CAMERA_WIDTH=str(w), FACEGATE_CAMERA_HEIGHT=str(h),
               FACEGATE_MQTT_EMBEDDED="true", FACEGATE_MQTT_EMBEDDED_ADDR=f"127.0.0.1:{port}",
               FACEGATE_ENROLL_KEYS=str(keys), FACEGATE_GALLERY_KEY=str(work / "gkey"),
               FACEGATE_AGREE_N="1", FACEGATE_AGREE_M="1", FACEGATE_QUALITY_MIN_SHARPNESS="0", FACEGATE_COOLDOWN="0s", FACEGATE_UNKNOWN_INTERVAL="0s",
               FACEGATE_MQTT_STATS_INTERVAL="2s", FACEGATE_MQTT_HA_DISCOVERY="false", FACEGATE_LOG_LEVEL="error",
               FACEGATE_TF_INTRA_OP_THREADS=str(threads), NOTIFY_SOCKET=str(notify))
    t0 = time.monotonic()
    daemon = subprocess.Popen([args.bin, "run"], env=env, stderr=open(state / "daemon.log", "w"))
    ready = None
    while ready is None and time.monotonic() - t0 < 120:
        try:
            msg = sock.recv(4096).decode()
        except socket.timeout:
            if daemon.poll() is not None:
                raise RuntimeError(f"daemon exited: see {state}/daemon.log")
            continue
        if "READY=1" in msg:
            ready = time.monotonic() - t0
    # Enrol her (the clip's frames are decided against this template).
    subprocess.run([args.bin, "enroll", "-broker", f"tcp://127.0.0.1:{port}", "-device", "bench", "-keys", str(keys),
                    "add", "astronaut", "Eileen Collins", str(work / "enroll.jpg")],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(args.warmup)
    watch = subprocess.Popen([args.bin, "watch", "-broker", f"tcp://127.0.0.1:{port}", "-device", "bench", "-stats"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    cpu0, _, _ = proc_stat(daemon.pid)
    w0 = time.monotonic()
    time.sleep(args.seconds)
    cpu1, rss, hwm = proc_stat(daemon.pid)
    wall = time.monotonic() - w0
    watch.terminate()
    out = watch.communicate(timeout=10)[0]
    stats = [json.loads(line.split(" ", 1)[1]) for line in out.splitlines() if line.startswith("facegate/bench/stats ")]
    daemon.terminate()
    daemon.wait(timeout=30)
    sock.close()
    last = stats[-1] if stats else {}
    return {
        "size": f"{w}x{h}", "threads": threads, "camera_fps": camera_fps, "startup_to_ready_s": round(ready, 2) if ready else None,
        "fps": last.get("fps"), "latency_ms": last.get("latency"), "attempts": last.get("attempts"),
        "grants": last.get("grants"), "cpu_percent": round(100 * (cpu1 - cpu0) / wall, 1),
        "rss_mb": round(rss / 1024, 1), "peak_rss_mb": round(hwm / 1024, 1), "window_s": round(wall, 1),
        "loadavg": open("/proc/loadavg").read().split()[:3],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=str(REPO / "bin" / "facegate"))
    ap.add_argument("--models", default=str(REPO / "build" / "models"))
    ap.add_argument("--seconds", type=float, default=60, help="measured window per size")
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--threads", default="1", help="TensorFlow intra-op threads, a comma-separated list to compare (0 = one per core; 1 is the daemon's default)")
    ap.add_argument("--camera-fps", default="-1", help="frame rate(s) of the clip, comma-separated (-1 = as fast as the gate takes frames)")
    ap.add_argument("--rounds", type=int, default=1, help="repeat every setting this many times, alternating settings")
    ap.add_argument("--sizes", default="640x480,1280x720")
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="facegate-bench-") as d:
        work = pathlib.Path(d)
        os.chmod(work, 0o700)
        for name in ("keys", "gkey"):
            p = work / name
            p.write_text(f"k1:{base64.b64encode(os.urandom(32)).decode()}\n")
            os.chmod(p, 0o600)
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(REPO / "testdata" / "astronaut.jpg"),
                        "-vf", "hflip", str(work / "enroll.jpg")], check=True)
        results = []
        port = 18900
        # Settings alternate inside each round, so that a change of load on
        # this shared machine hits every setting alike.
        for _ in range(args.rounds):
            for size in args.sizes.split(","):
                w, h = (int(v) for v in size.split("x"))
                for camera_fps in args.camera_fps.split(","):
                    for threads in (int(t) for t in args.threads.split(",")):
                        r = run_one(args, w, h, threads, camera_fps.strip(), work, port)
                        port += 1
                        print(json.dumps(r), flush=True)
                        results.append(r)
    doc = {"machine": {"cpu": cpu_model(), "cores": os.cpu_count()}, "threads": args.threads, "camera_fps": args.camera_fps, "rounds": args.rounds,
           "seconds": args.seconds, "results": results}
    if args.out:
        pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.out).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


def cpu_model() -> str:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
