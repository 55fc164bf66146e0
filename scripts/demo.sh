#!/usr/bin/env bash
# Demo: issue a Quay OAuth token from Vault, use it, revoke it.
#
# Starts the Quay emulator and a Vault dev server on free loopback ports,
# enables and configures the plugin, and walks through what a user does with
# the real `vault` CLI. Every command is printed before it runs ("$ ...").
# Everything is stopped and removed on exit, also on failure or Ctrl-C.
#
#   make demo                  # builds bin/vault, the plugin and the emulator first
#   scripts/demo.sh            # if they are built already
#
# Binaries (defaults in parentheses): VAULT_BINARY (bin/vault),
# PLUGIN_BINARY (bin/plugins/vault-plugin-secrets-quay),
# EMULATOR_BINARY (bin/quay-emulator).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
vault_bin=${VAULT_BINARY:-$repo/bin/vault}
plugin_bin=${PLUGIN_BINARY:-$repo/bin/plugins/vault-plugin-secrets-quay}
emulator_bin=${EMULATOR_BINARY:-$repo/bin/quay-emulator}
plugin_name=vault-plugin-secrets-quay
org=demo

for f in "$vault_bin" "$plugin_bin" "$emulator_bin"; do
	[ -x "$f" ] || { echo "missing $f: run 'make demo' (or 'make vault build')" >&2; exit 1; }
done
command -v curl >/dev/null || { echo "the demo needs curl" >&2; exit 1; }

# --- output helpers ---------------------------------------------------------
# Values listed in $secrets are shown as their first 4 characters + "…".
secrets=()
mask() {
	local text=$1 s
	for s in "${secrets[@]}"; do
		[ -n "$s" ] && text=${text//"$s"/"${s:0:4}…"}
	done
	printf '%s\n' "$text"
}
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s## %s%s\n' "$bold" "$*" "$plain"; }
say() { printf '%s\n' "$*"; }
# run prints a command (secrets masked), runs it and prints its output
# (secrets masked).
run() {
	mask "\$ $*"
	local out status=0
	out=$("$@" 2>&1) || status=$?
	[ -z "$out" ] || mask "$out"
	return "$status"
}
fail() { echo "demo failed: $*" >&2; exit 1; }

# --- workspace and cleanup ---------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/quay-vault-demo.XXXXXX")
work=$(cd "$work" && pwd -P) # Vault wants a symlink-free plugin directory
pids=()
cleanup() {
	local status=$?
	trap - EXIT INT TERM
	for pid in "${pids[@]}"; do
		# Each server leads its own process group (setsid); Vault's plugin
		# process is in Vault's group.
		kill -TERM -- "-$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL -- "-$pid" 2>/dev/null || true
	done
	if [ "$status" -ne 0 ]; then
		for log in "$work"/*.log; do
			[ -f "$log" ] || continue
			echo "---- last lines of $(basename "$log"):" >&2
			mask "$(tail -n 25 "$log")" >&2
		done
	fi
	rm -rf "$work"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port prints a loopback port that nothing listens on, starting at $1
# (and, with $2=pair, whose successor is free too: Vault's cluster port).
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
	local p=$1
	while port_busy "$p" || { [ "${2:-}" = pair ] && port_busy $((p + 1)); }; do p=$((p + 2)); done
	echo "$p"
}
# wait_for polls a command until it succeeds, for at most $1 seconds.
wait_for() {
	local timeout=$1
	shift
	local deadline=$((SECONDS + timeout))
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

# --- Quay ---------------------------------------------------------------------
step "Start the Quay emulator (an in-memory Quay 3.18 with programmatic bootstrap on)"
quay_port=$(free_port 18300)
control_port=$(free_port $((quay_port + 1)))
sed "s|@WORKDIR@|$work|g" "$repo/scripts/demo/quay-config.yaml" >"$work/quay-config.yaml"
say "\$ quay-emulator -config quay-config.yaml -listen 127.0.0.1:$quay_port -control-listen 127.0.0.1:$control_port &"
setsid "$emulator_bin" -config "$work/quay-config.yaml" \
	-listen "127.0.0.1:$quay_port" -control-listen "127.0.0.1:$control_port" >"$work/quay-emulator.log" 2>&1 &
pids+=($!)
wait_for 30 grep -q 'quay-emulator ready' "$work/quay-emulator.log" || fail "the emulator did not start"
quay_url="http://127.0.0.1:$quay_port"
say "Quay is at $quay_url"

# Quay's programmatic bootstrap wrote {"access_token": "..."} for the
# superuser named in BOOTSTRAP_TOKEN_OWNER; keep just the token, in a file.
bootstrap=$(sed -n 's/.*"access_token"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$work/quay-machine-token.json")
[ -n "$bootstrap" ] || fail "no bootstrap token in $work/quay-machine-token.json"
secrets+=("$bootstrap")
printf '%s' "$bootstrap" >"$work/bootstrap-token"
chmod 600 "$work/bootstrap-token"

step "Create the organization whose tokens Vault will issue (Quay API, bootstrap token)"
run curl -sS -X POST -H "Authorization: Bearer $bootstrap" -H 'Content-Type: application/json' \
	-d "{\"name\": \"$org\", \"email\": \"$org@example.com\"}" "$quay_url/api/v1/organization/"

# --- Vault --------------------------------------------------------------------
step "Start a Vault dev server with the plugin directory"
mkdir -p "$work/plugins" "$work/home"
cp "$plugin_bin" "$work/plugins/$plugin_name"
vault_port=$(free_port 18200 pair)
root_token="demo-root-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
secrets+=("$root_token")
say "\$ vault server -dev -dev-listen-address=127.0.0.1:$vault_port -dev-plugin-dir=$work/plugins &"
HOME="$work/home" setsid "$vault_bin" server -dev -dev-no-store-token \
	-dev-root-token-id="$root_token" -dev-listen-address="127.0.0.1:$vault_port" \
	-dev-plugin-dir="$work/plugins" >"$work/vault.log" 2>&1 &
pids+=($!)
export VAULT_ADDR="http://127.0.0.1:$vault_port" VAULT_TOKEN="$root_token" HOME="$work/home"
wait_for 60 curl -fsS "$VAULT_ADDR/v1/sys/health" || fail "Vault did not start"
mask "\$ export VAULT_ADDR=$VAULT_ADDR VAULT_TOKEN=$VAULT_TOKEN"

vault() { "$vault_bin" "$@"; }

step "Enable the plugin at quay/ and point it at Quay"
run vault secrets enable -path=quay "$plugin_name"
run vault write quay/config url="$quay_url" token=@"$work/bootstrap-token"
run vault read quay/config

step "Write a role that issues OAuth tokens of organization '$org'"
run vault write quay/roles/ci credential_type=oauth_token namespace_name="$org" \
	scopes=repo:read,user:read ttl=15m max_ttl=1h

step "Read credentials: every read mints a new Quay token, as a Vault lease"
say "\$ vault read -format=json quay/creds/ci"
creds=$(vault read -format=json quay/creds/ci)
token=$(printf '%s\n' "$creds" | sed -n 's/^ *"token": "\([^"]*\)".*/\1/p')
lease_id=$(printf '%s\n' "$creds" | sed -n 's/^ *"lease_id": "\([^"]*\)".*/\1/p')
[ -n "$token" ] && [ -n "$lease_id" ] || fail "no token or lease in: $(mask "$creds")"
secrets+=("$token")
mask "$creds"

step "Use the token against Quay"
run curl -sS -H "Authorization: Bearer $token" "$quay_url/api/v1/user/"
code=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$quay_url/api/v1/user/")
[ "$code" = 200 ] || fail "Quay answered $code to the fresh token"
say "=> HTTP $code"

step "Revoke the lease: Vault deletes the token in Quay"
run vault lease revoke -sync "$lease_id"

step "The token is refused now"
mask "\$ curl -sS -o /dev/null -w '%{http_code}' -H \"Authorization: Bearer $token\" $quay_url/api/v1/user/"
code=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$quay_url/api/v1/user/")
say "=> HTTP $code"
[ "$code" = 401 ] || fail "Quay answered $code to the revoked token, want 401"

step "Done: stopping Vault and the emulator"
