#!/usr/bin/env bash
# sandbox.sh start|stop|reset|env: a Quay emulator and a Vault dev server that
# keep running, with the plugin enabled at quay/ and configured the
# recommended way (the engine mints its own root token in organization
# vault-root), so that every example in docs/ can be run as written.
#
#   make sandbox          # builds what is missing, then: scripts/sandbox.sh start
#   make sandbox-stop     # scripts/sandbox.sh stop
#   eval "$(scripts/sandbox.sh env)"   # the export lines again
#   scripts/sandbox.sh reset           # a fresh quay/ mount, configured as at start,
#                                      # and no emulator faults (Quay keeps its state)
#
# The emulator (cmd/quay-emulator) serves Quay 3.18's API and registry, its
# control API (faults, call counters, clock, seeding: docs/emulator.md) and a
# test OIDC provider shaped like Microsoft Entra ID. Quay holds the users
# quayadmin (superuser) and svc-vault, and the organizations acme (with the
# repository app and the robot acme+ci), automation and vault-root.
#
# SANDBOX_DIR (default <repo>/.sandbox) holds the logs, the export lines
# (env), the process IDs and the files the docs' @file examples read
# (quay-token.txt, password.txt, secret.txt). Binaries as for scripts/demo.sh:
# VAULT_BINARY (bin/vault), PLUGIN_BINARY (bin/plugins/vault-plugin-secrets-quay),
# EMULATOR_BINARY (bin/quay-emulator).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${SANDBOX_DIR:-$repo/.sandbox}
vault_bin=${VAULT_BINARY:-$repo/bin/vault}
plugin_bin=${PLUGIN_BINARY:-$repo/bin/plugins/vault-plugin-secrets-quay}
emulator_bin=${EMULATOR_BINARY:-$repo/bin/quay-emulator}
plugin_name=vault-plugin-secrets-quay
# The sandbox's stand-ins for an Entra tenant and Vault's app registration.
tenant=11111111-2222-3333-4444-555555555555
client_id=aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee
# A directory is only ever written to, or removed, when it holds this marker.
marker=.quay-vault-sandbox

fail() { echo "sandbox: $*" >&2; exit 1; }
log() { printf '%s\n' "$*" >&2; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# free_port prints a free loopback port from $1 on (with pair: whose
# successor, Vault's cluster port, is free too).
free_port() {
	local p=$1
	while port_busy "$p" || { [ "${2:-}" = pair ] && port_busy $((p + 1)); }; do p=$((p + 2)); done
	echo "$p"
}
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}
random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# alive: process $1 exists and is not a zombie (a killed server whose parent,
# the shell that started it, is gone may linger as one).
alive() {
	local state
	if [ -d /proc/self ]; then # Linux, where ps may not be installed
		state=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
		state=${state##*) } # the field after the command's name
		[ "${state%% *}" != Z ]
	else
		state=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$state" ] && [[ $state != Z* ]]
	fi
}

running() {
	[ -f "$dir/pids" ] || return 1
	local pid
	while read -r pid; do alive "$pid" || return 1; done <"$dir/pids"
}

stop() {
	[ -e "$dir" ] || return 0
	[ -n "$(ls -A "$dir")" ] || { rmdir "$dir"; return 0; }
	[ -f "$dir/$marker" ] || fail "$dir is not a sandbox directory; not touching it"
	if [ -f "$dir/pids" ]; then
		local pid pids=()
		while read -r pid; do pids+=("$pid"); done <"$dir/pids"
		# Each server leads its own process group (setsid); Vault's plugin
		# processes are in Vault's group.
		for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
		for pid in "${pids[@]}"; do
			for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
			kill -KILL -- "-$pid" 2>/dev/null || true
		done
	fi
	rm -rf "$dir"
}

vault() { "$vault_bin" "$@"; }

# configure_mount (re)creates the quay/ mount and configures it the
# recommended way: a token of quayadmin (as if generated in Quay's UI),
# traded for the engine's own root token in vault-root.
configure_mount() {
	curl -fsS -X DELETE "$QUAY_CONTROL_URL/faults" # faults a previous user left behind
	if ! vault secrets disable quay >/dev/null 2>&1; then
		# A lease whose credential Quay no longer lets the current config
		# delete must not block the reset.
		vault lease revoke -force -prefix quay/ >/dev/null
		vault secrets disable quay >/dev/null
	fi
	vault secrets enable -path=quay "$plugin_name" >/dev/null
	# The write warns that the engine leaves quayadmin's token alone (it is
	# not Quay's bootstrap token): shown only if the write fails.
	local out
	out=$(cd "$dir" && vault write quay/config url="$QUAY_URL" token=@quay-token.txt root_organization=vault-root 2>&1) ||
		{ printf '%s\n' "$out" >&2; return 1; }
}

# quay_put is a PUT to Quay's API as quayadmin, as its UI would do it.
quay_put() {
	curl -fsS -o /dev/null -X PUT -H "Authorization: Bearer $QUAY_TOKEN" -H 'Content-Type: application/json' -d '{}' "$QUAY_URL/$1"
}

# control posts JSON to the emulator's control API and prints the answer.
control() { curl -fsS -X POST -H 'Content-Type: application/json' -d "$2" "$QUAY_CONTROL_URL/$1"; }

start() {
	for f in "$vault_bin" "$plugin_bin" "$emulator_bin"; do
		[ -x "$f" ] || fail "missing $f: run 'make sandbox' (or 'make vault build')"
	done
	command -v curl >/dev/null || fail "the sandbox needs curl"
	if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
		if running; then
			log "the sandbox is already running ('make sandbox-stop' stops it):"
			cat "$dir/env"
			return 0
		fi
		stop # a sandbox whose processes died: clear it
	fi
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd -P) # Vault wants a symlink-free plugin directory
	touch "$dir/$marker"
	chmod 700 "$dir"
	trap 'status=$?; if [ $status -ne 0 ]; then for f in "$dir"/*.log; do [ -f "$f" ] && { echo "---- $f:"; tail -n 20 "$f"; } >&2; done; stop; fi' EXIT

	# --- Quay -----------------------------------------------------------------
	local quay_port control_port oidc_port vault_port
	quay_port=$(free_port 18400)
	control_port=$(free_port $((quay_port + 1)))
	oidc_port=$(free_port $((control_port + 1)))
	QUAY_URL=http://127.0.0.1:$quay_port
	QUAY_CONTROL_URL=http://127.0.0.1:$control_port
	local oidc_url=http://127.0.0.1:$oidc_port
	local client_secret
	client_secret=$(random_hex 16)
	printf '%s' "$client_secret" >"$dir/secret.txt"
	random_hex 12 >"$dir/password.txt"
	chmod 600 "$dir/secret.txt" "$dir/password.txt"
	sed -e "s|@WORKDIR@|$dir|g" -e "s|@QUAY_HOST@|127.0.0.1:$quay_port|g" -e "s|@OIDC_URL@|$oidc_url|g" \
		-e "s|@TENANT@|$tenant|g" -e "s|@CLIENT_ID@|$client_id|g" \
		"$repo/scripts/sandbox/quay-config.yaml" >"$dir/quay-config.yaml"
	setsid "$emulator_bin" -config "$dir/quay-config.yaml" -listen "127.0.0.1:$quay_port" \
		-control-listen "127.0.0.1:$control_port" -oidc-listen "127.0.0.1:$oidc_port" \
		-oidc-issuer "https://login.microsoftonline.com/$tenant/v2.0" \
		-oidc-client "$client_id:$client_secret:vault-quay" >"$dir/quay-emulator.log" 2>&1 </dev/null &
	echo $! >>"$dir/pids"
	wait_for 30 grep -q 'quay-emulator ready' "$dir/quay-emulator.log" || fail "the emulator did not start"

	# As in Quay, the programmatic bootstrap file is written only at a start
	# that finds its owner: quayadmin first, then what a restart does.
	control users '{"username": "quayadmin", "email": "quayadmin@example.com"}'
	control restart '{}'
	# A token of quayadmin, as generated in Quay's UI; the scopes are the
	# engine's default root_token_scopes.
	local answer
	answer=$(control tokens '{"username": "quayadmin", "scope": "org:admin repo:admin repo:create repo:read repo:write user:admin user:read"}')
	QUAY_TOKEN=$(printf '%s' "$answer" | sed -n 's/.*"token"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
	[ -n "$QUAY_TOKEN" ] || fail "the emulator issued no token"
	printf '%s' "$QUAY_TOKEN" >"$dir/quay-token.txt"
	chmod 600 "$dir/quay-token.txt"
	control organizations '{"name": "acme", "admin": "quayadmin"}'
	control repositories '{"namespace": "acme", "name": "app"}'
	# svc-vault logs in with a password through direct OAuth (docs/bootstrap.md).
	control users "{\"username\": \"svc-vault\", \"password\": \"$(cat "$dir/password.txt")\", \"email\": \"svc-vault@example.com\"}"
	control organizations '{"name": "automation", "admin": "svc-vault"}'
	control applications '{"organization": "automation", "name": "vault", "client_id": "ABCDEFGHIJ0123456789"}'

	# --- Vault ----------------------------------------------------------------
	mkdir -p "$dir/plugins" "$dir/home"
	cp "$plugin_bin" "$dir/plugins/$plugin_name"
	vault_port=$(free_port 18500 pair)
	VAULT_ADDR=http://127.0.0.1:$vault_port
	VAULT_TOKEN=sandbox-$(random_hex 12)
	HOME="$dir/home" setsid "$vault_bin" server -dev -dev-no-store-token -dev-root-token-id="$VAULT_TOKEN" \
		-dev-listen-address="127.0.0.1:$vault_port" -dev-plugin-dir="$dir/plugins" >"$dir/vault.log" 2>&1 </dev/null &
	echo $! >>"$dir/pids"
	export VAULT_ADDR VAULT_TOKEN QUAY_URL QUAY_CONTROL_URL
	wait_for 60 curl -fsS "$VAULT_ADDR/v1/sys/health" || fail "Vault did not start"
	configure_mount
	# svc-vault may then mint its own root token in vault-root too; the
	# robot acme+ci is the one docs/federated-robots.md federates.
	quay_put "api/v1/organization/vault-root/team/owners/members/svc-vault"
	quay_put "api/v1/organization/acme/robots/ci"

	{
		printf 'export %s=%q\n' VAULT_ADDR "$VAULT_ADDR" VAULT_TOKEN "$VAULT_TOKEN" \
			QUAY_URL "$QUAY_URL" QUAY_TOKEN "$QUAY_TOKEN" QUAY_CONTROL_URL "$QUAY_CONTROL_URL" \
			BOOTSTRAP_TOKEN_PATH "$dir/quay-machine-token.json" \
			AZURE_AUTHORITY_HOST "$oidc_url" AZURE_TENANT_ID "$tenant" AZURE_CLIENT_ID "$client_id" \
			SANDBOX_DIR "$dir"
	} >"$dir/env"
	trap - EXIT
	cat >&2 <<EOF

The sandbox is running: Vault $VAULT_ADDR with the plugin at quay/ (configured with
root_organization=vault-root), Quay $QUAY_URL, its control API $QUAY_CONTROL_URL
and an Entra-shaped OIDC provider $oidc_url (tenant $tenant).
Logs and files: $dir. Stop it with 'make sandbox-stop'.

Paste these lines into your shell (or: source $dir/env), and run the docs'
examples in $dir, where quay-token.txt, password.txt and secret.txt are:

EOF
	cat "$dir/env"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
env)
	running || fail "no sandbox is running in $dir ('make sandbox' starts one)"
	cat "$dir/env"
	;;
reset)
	running || fail "no sandbox is running in $dir ('make sandbox' starts one)"
	# shellcheck disable=SC1091
	source "$dir/env"
	configure_mount
	;;
*) fail "usage: sandbox.sh start|stop|reset|env" ;;
esac
