#!/usr/bin/env bash
# The demo. Until the daemon lands it shows the binary and the models it loads.
set -euo pipefail
cd "$(dirname "$0")/.."
bin/facegate version
bin/facegate models
echo
echo "facegate run (the daemon on the bundled clip with the embedded broker) is not built yet."
