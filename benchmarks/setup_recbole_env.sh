#!/usr/bin/env bash
# Creates a separate venv for the RecBole 1.2.1 peer baseline (it pins numpy<2 / pandas<3, which the
# project venv cannot take). torch goes in first so pip keeps the local 2.13.0 CPU build instead of
# pulling a CUDA wheel as a RecBole dependency.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_VENV="${BENCH_VENV:-$REPO_ROOT/.data/bench-venv}"
PYTHON="${PYTHON:-python3.11}"

if [ -x "$BENCH_VENV/bin/python" ] && "$BENCH_VENV/bin/python" -c "import recbole, torch" 2>/dev/null; then
    echo "RecBole venv already present: $BENCH_VENV"
    exit 0
fi
mkdir -p "$(dirname "$BENCH_VENV")"
"$PYTHON" -m venv "$BENCH_VENV"
PIP="$BENCH_VENV/bin/pip"
"$PIP" install --quiet "torch==2.13.0"
"$PIP" install --quiet "recbole==1.2.1"
# ray 2.6.3 (pulled by RecBole) imports pkg_resources, removed in setuptools 81.
"$PIP" install --quiet "setuptools<81"
# ray uses np.bool8 and RecBole's config uses np.float_, both gone in numpy 2.
"$PIP" install --quiet "numpy<2" "pandas<3"
"$BENCH_VENV/bin/python" -c "import recbole, torch; print('recbole', recbole.__version__, 'torch', torch.__version__)"
