#!/usr/bin/env bash
# The chart, image and plain-manifest checks, as CI runs them (no cluster needed): Helm's own lint
# (strict) and render through the Helm v4 SDK over the default values and every toggle, every
# manifest validated against the Kubernetes schemas, the alerts through `promtool check rules`
# and `promtool test rules`, values.schema.json rejecting bad values, deploy/ not drifted from the
# chart, the chart's CRD identical to crds/, hadolint on the Dockerfile.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ci-install-chart.sh
exec "${PYTHON:-python3}" scripts/chart.py test
