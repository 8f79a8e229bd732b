#!/usr/bin/env bash
# The full test suite: the Rust workspace (cargo test) and the Python package (pytest against the
# package installed from this checkout). What README's second command and .ci/run run.
#
#   tools/test.sh          set up what is missing, then run everything
#   tools/test.sh setup    only create (or refresh) the Python test venv
#
# The venv lives in $CLIP_TEST_VENV (default ~/.cache/clip-rs/test-venv), made from
# python/requirements-test.txt with PyPI and rebuilt when that file changes. Under CI=true a
# missing optional dependency or fixture fails the tests instead of skipping them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv="${CLIP_TEST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/clip-rs/test-venv}"
requirements=python/requirements-test.txt

setup_venv() {
    local want stamp="$venv/.requirements.sha256"
    want=$(sha256sum "$requirements" | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && [ -x "$venv/bin/python" ]; then
        return
    fi
    echo "tools/test.sh: creating the Python test venv in $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --disable-pip-version-check --quiet -r "$requirements"
    echo "$want" > "$stamp"
}

if [ "${1:-}" = setup ]; then
    setup_venv
    exit 0
fi

setup_venv
cargo test --workspace --release
# Build and install the package as a user does (`pip install .`), with the venv's maturin.
PATH="$venv/bin:$PATH" "$venv/bin/pip" install --disable-pip-version-check --quiet \
    --no-build-isolation --no-deps --force-reinstall .
"$venv/bin/python" -m pytest python/tests -q
