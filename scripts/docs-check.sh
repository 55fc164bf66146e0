#!/usr/bin/env bash
# docs-check.sh: runs every example in docs/ as written against a sandbox of
# its own (scripts/sandbox.sh in a temporary directory), then stops it.
# `make docs-check` runs it; docs/examples_run_test.go is the runner.
# Binaries as for scripts/sandbox.sh; GO (default go) runs the test.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/quay-vault-docs-check.XXXXXX")
export SANDBOX_DIR=$tmp/sandbox
trap '"$repo/scripts/sandbox.sh" stop; rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

started=$SECONDS
if ! out=$("$repo/scripts/sandbox.sh" start 2>&1); then
	printf '%s\n' "$out" >&2
	exit 1
fi
echo "sandbox started in $((SECONDS - started)) s"
cd "$repo"
"${GO:-go}" test -tags docscheck -count=1 -v -run '^TestDocExamplesRunAgainstSandbox$' ./docs/
