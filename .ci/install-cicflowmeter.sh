#!/usr/bin/env bash
# The real Python `cicflowmeter` flow extractor (PyPI) for the live-relay test.
# cicflowmeter 0.5.0 needs Python >= 3.12 and pins its own numpy/scapy, so it gets its own
# virtual environment (.venv-cicflowmeter) instead of sharing the project's.
# scapy reads pcaps with a BPF filter compiled by tcpdump/libpcap (Debian packages).
# Idempotent: does nothing when the environment already works.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-cicflowmeter
if [[ -x $VENV/bin/python ]] && $VENV/bin/python -c "import cicflowmeter.sniffer" 2>/dev/null \
    && command -v tcpdump >/dev/null; then
    echo "install-cicflowmeter: already installed"
    exit 0
fi

if ! command -v tcpdump >/dev/null; then
    SUDO=""; [[ "$(id -u)" -ne 0 ]] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends tcpdump libpcap0.8
fi

PY312=""
for candidate in python3.13 python3.12 "$HOME/.pyenv/versions/3.12.1/bin/python" \
                 "$HOME/.pyenv/versions/3.13.0/bin/python"; do
    if command -v "$candidate" >/dev/null 2>&1 \
        && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
        PY312=$candidate
        break
    fi
done
if [[ -z $PY312 ]]; then
    echo "install-cicflowmeter: no Python >= 3.12 found; the live-relay test will be skipped" >&2
    exit 0
fi
"$PY312" -m venv "$VENV"
$VENV/bin/python -m pip install -q --upgrade pip
$VENV/bin/python -m pip install -q "cicflowmeter==0.5.0"
$VENV/bin/python -c "import cicflowmeter.sniffer; print('install-cicflowmeter: ready')"
