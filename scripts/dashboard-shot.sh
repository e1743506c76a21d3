#!/usr/bin/env bash
# docs/metrics-dashboard.png: the Grafana dashboard docs/grafana/facegate-dashboard.json
# rendered from a real run. Not part of CI.
#
# Grafana is neither in Debian nor downloadable here, so the dashboard's own
# queries are evaluated by a real Prometheus (Debian's `prometheus` package)
# that scraped the demo (scripts/demo.sh, what `make run` runs) every 2 s,
# and the results are drawn by scripts/dashboard/page.html with Chart.js
# (npm, pinned with its integrity hash in scripts/dashboard/package-lock.json),
# laid out by the panels' gridPos, and photographed by headless Chromium
# (Debian's `chromium`). While the demo runs it also asks the gate to delete
# someone who is not enrolled (an enrolment error for the enrolment panel)
# and saves one `curl /metrics` to build/dashboard-shot/metrics.txt.
#
# Needs bin/facegate and build/models (make build models), npm, and the
# Debian packages prometheus and chromium (installed here when missing and
# run as root). SHOT_SECONDS (default 150) is the demo's length.
#
#   bash scripts/dashboard-shot.sh [OUT.png]
set -euo pipefail
cd "$(dirname "$0")/.."
png=$(realpath -m "${1:-docs/metrics-dashboard.png}")
out=$PWD/build/dashboard-shot
secs=${SHOT_SECONDS:-150}
mport=${SHOT_METRICS_PORT:-19464}
pport=${SHOT_PROMETHEUS_PORT:-19090}
bport=${DEMO_PORT:-18831}
step=2

missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "dashboard-shot: apt-get install ${missing[*]} (as root) first" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
[ -x bin/facegate ] || { echo "dashboard-shot: bin/facegate missing (make build models)" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out/page" "$out/prometheus-data"
cp scripts/dashboard/package.json scripts/dashboard/package-lock.json "$out/"
(cd "$out" && npm ci --cache "${FACEGATE_CACHE:-$HOME/.cache/facegate}/npm-cache" --prefer-offline --no-audit --no-fund --loglevel=error)
cp "$out/node_modules/chart.js/dist/chart.umd.js" scripts/dashboard/page.html "$out/page/"

cat > "$out/prometheus.yml" <<EOF
global: {scrape_interval: ${step}s, evaluation_interval: ${step}s}
scrape_configs:
  - job_name: facegate
    static_configs: [{targets: ['127.0.0.1:$mport']}]
EOF
prometheus --config.file="$out/prometheus.yml" --storage.tsdb.path="$out/prometheus-data" \
  --web.listen-address="127.0.0.1:$pport" > "$out/prometheus.log" 2>&1 &
prom=$!
demo=
trap 'kill $prom ${demo:+$demo} 2>/dev/null; wait 2>/dev/null || true' EXIT

start=$(date +%s)
FACEGATE_METRICS_ADDR=127.0.0.1:$mport DEMO_SECONDS=$secs DEMO_PORT=$bport bash scripts/demo.sh > "$out/demo.log" 2>&1 &
demo=$!
sleep 25
bin/facegate enroll -broker "tcp://127.0.0.1:$bport" -device demo-door -keys build/demo/enroll-keys delete nobody \
  > "$out/enroll-error.json" 2>&1 || true
sleep $((secs - 20))
end=$(date +%s)
curl -sf "http://127.0.0.1:$mport/metrics" > "$out/metrics.txt"
curl -s "http://127.0.0.1:$mport/readyz" > "$out/readyz.txt" || true
wait $demo || true
demo=
python3 scripts/dashboard/render.py docs/grafana/facegate-dashboard.json "http://127.0.0.1:$pport" "$start" "$end" "$step" "$out/page/data.js"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --force-device-scale-factor=1 \
  --window-size=1600,1170 --virtual-time-budget=10000 --screenshot="$png" "file://$out/page/page.html" 2> "$out/chromium.log"
echo "dashboard-shot: $png (demo log $out/demo.log, one scrape $out/metrics.txt)"
