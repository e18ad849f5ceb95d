#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script):
#   formatting, clippy with warnings as errors, the committed OpenAPI documents, and every test
#   against SQLite and against a real PostgreSQL server started here for the run.
# Needs: the Rust toolchain with cargo-nextest (plain `cargo test` otherwise), PostgreSQL 15
# server binaries, and Python 3 with its venv module and access to PyPI (the independent
# Standard Webhooks and OpenAPI checks install their packages into target/test-venv).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

cleanup() {
    if [ -n "${ARO_PG_CLUSTER_DIR:-}" ]; then
        scripts/pg-cluster.sh stop "$ARO_PG_CLUSTER_DIR" || true
    fi
}
trap cleanup EXIT INT TERM

step "formatting"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Python tools for independent checks (standardwebhooks, schemathesis)"
VENV="${ARO_TEST_VENV:-$PWD/target/test-venv}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r scripts/test-requirements.txt
export ARO_TEST_PYTHON="$VENV/bin/python"

step "PostgreSQL for the test run"
# An assignment, not `eval "$(…)"` alone: a cluster that fails to start stops the run here.
pg_env=$(scripts/pg-cluster.sh start)
eval "$pg_env"
export ARO_REQUIRE_POSTGRES=1
echo "PostgreSQL at ${ARO_TEST_POSTGRES_URL}"

step "tests (SQLite and PostgreSQL)"
if command -v cargo-nextest >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
    cargo test --workspace --locked --doc
else
    cargo test --workspace --locked --no-fail-fast
fi

step "all checks passed"
