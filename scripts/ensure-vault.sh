#!/usr/bin/env bash
# ensure-vault.sh DEST: makes DEST (bin/vault) a Vault >= 1.15, building one
# only when none is at hand. `make vault` runs it; the e2e suite, `make demo`
# and `make sandbox` then find Vault at DEST.
#
# In order:
#   1. VAULT_BINARY, when set: DEST becomes a symlink to it (an error if it is
#      not a Vault >= 1.15; a Vault built earlier at DEST is kept as DEST.built).
#   2. DEST itself, when it is a Vault >= 1.15 already.
#   3. the first `vault` on PATH that is a Vault >= 1.15: DEST links to it.
#   4. otherwise Vault v1.21.0 is built from scripts/tools into DEST. A cold
#      build downloads about 3.8 GB of modules and compiles for 15-40 minutes
#      on 2 cores (28 minutes on a busy 2-core machine here).
#
# Versions are read from `vault version` ("Vault v1.21.0 (…), built …").
# GO (default go) is the Go command used for the build.
set -euo pipefail

dest=${1:?usage: ensure-vault.sh DEST}
min_major=1 min_minor=15
tools=$(cd "$(dirname "${BASH_SOURCE[0]}")/tools" && pwd)
mkdir -p "$(dirname "$dest")"
dest=$(cd "$(dirname "$dest")" && pwd)/$(basename "$dest")

# vault_ok prints the version of the Vault at $1 and succeeds when it is at
# least $min_major.$min_minor; it fails quietly for anything else.
vault_ok() {
	local out major minor
	[ -x "$1" ] && [ ! -d "$1" ] || return 1
	out=$("$1" version 2>/dev/null | head -n 1) || return 1
	[[ $out =~ ^Vault\ v([0-9]+)\.([0-9]+)\.[0-9]+ ]] || return 1
	major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
	printf '%s\n' "${out%% (*}"
	((major > min_major || (major == min_major && minor >= min_minor)))
}

# link_to points DEST at Vault $1, keeping a Vault built earlier at DEST.
link_to() {
	local target=$1
	[ "$(readlink -f "$target")" = "$(readlink -f "$dest" 2>/dev/null || true)" ] && return 0
	if [ -f "$dest" ] && [ ! -L "$dest" ]; then
		mv -f "$dest" "$dest.built"
		echo "kept the Vault built earlier as $dest.built"
	fi
	ln -sfn "$target" "$dest"
}

if [ -n "${VAULT_BINARY:-}" ]; then
	target=$(readlink -f "$VAULT_BINARY" 2>/dev/null || true)
	if [ -z "$target" ] || ! version=$(vault_ok "$target"); then
		echo "VAULT_BINARY=$VAULT_BINARY is not a Vault >= $min_major.$min_minor (checked with \`vault version\`)" >&2
		exit 1
	fi
	link_to "$target"
	echo "using $version from VAULT_BINARY ($target) as $dest"
	exit 0
fi

if vault_ok "$dest" >/dev/null; then
	exit 0
fi

if on_path=$(command -v vault 2>/dev/null) && target=$(readlink -f "$on_path") &&
	[ "$target" != "$(readlink -f "$dest" 2>/dev/null || true)" ] && version=$(vault_ok "$target"); then
	link_to "$target"
	echo "using $version from PATH ($on_path) as $dest"
	exit 0
fi

# Nothing usable: DEST (if any) is a dangling link or too old.
echo "no Vault >= $min_major.$min_minor at $dest, in VAULT_BINARY or on PATH:"
echo "building Vault v1.21.0 from scripts/tools (cold: about 3.8 GB of modules, 15-40 min on 2 cores)"
cd "$tools"
CGO_ENABLED=0 "${GO:-go}" build -trimpath -ldflags='-s -w' -o "$dest.tmp" github.com/hashicorp/vault
# Written under a temporary name so an interrupted build never leaves a
# truncated DEST behind.
rm -f "$dest"
mv -f "$dest.tmp" "$dest"
