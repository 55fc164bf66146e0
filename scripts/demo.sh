#!/usr/bin/env bash
# Demo: the engine takes over Quay's bootstrap credential and mints its own
# root token, issues an OAuth token and a docker-ready robot, rotates a static
# robot, and tidies what a force-revoked lease left behind.
#
# Starts the Quay emulator and a Vault dev server on free loopback ports,
# enables and configures the plugin, and walks through what a user does with
# the real `vault` CLI. Every command is printed before it runs ("$ ...").
# Everything is stopped and removed on exit, also on failure or Ctrl-C.
#
#   make demo                  # builds bin/vault, the plugin and the emulator first
#   make demo DEMO_BOOTSTRAP=initialize   # zero-touch: Vault creates Quay's first user
#   scripts/demo.sh            # if they are built already
#
# DEMO_BOOTSTRAP=token (default) starts from Quay's programmatic bootstrap
# token file; DEMO_BOOTSTRAP=initialize starts from an empty Quay, and the
# organization and repository are then created through the emulator's
# control API, standing in for a Quay admin in the UI.
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
mode=${DEMO_BOOTSTRAP:-token}
case "$mode" in token | initialize) ;; *) echo "DEMO_BOOTSTRAP must be token or initialize" >&2; exit 1 ;; esac

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
# shell_quote prints its arguments as one command line that a shell would
# split back into the same words, so printed commands can be copied.
shell_quote() {
	local out='' a
	for a in "$@"; do
		if [[ $a =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
			out+="$a "
		else
			out+="'${a//\'/\'\\\'\'}' "
		fi
	done
	printf '%s' "${out% }"
}
# run prints a command (secrets masked), runs it and prints its output
# (secrets masked).
run() {
	mask "\$ $(shell_quote "$@")"
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
config_file=quay-config.yaml
if [ "$mode" = initialize ]; then
	step "Start the Quay emulator (an in-memory Quay 3.18, empty, first-user initialization on)"
	config_file=quay-config-empty.yaml
else
	step "Start the Quay emulator (an in-memory Quay 3.18 with programmatic bootstrap on)"
fi
quay_port=$(free_port 18300)
control_port=$(free_port $((quay_port + 1)))
sed -e "s|@WORKDIR@|$work|g" -e "s|@QUAY_HOST@|127.0.0.1:$quay_port|g" "$repo/scripts/demo/$config_file" >"$work/quay-config.yaml"
say "\$ quay-emulator -config quay-config.yaml -listen 127.0.0.1:$quay_port -control-listen 127.0.0.1:$control_port &"
setsid "$emulator_bin" -config "$work/quay-config.yaml" \
	-listen "127.0.0.1:$quay_port" -control-listen "127.0.0.1:$control_port" >"$work/quay-emulator.log" 2>&1 &
pids+=($!)
wait_for 30 grep -q 'quay-emulator ready' "$work/quay-emulator.log" || fail "the emulator did not start"
quay_url="http://127.0.0.1:$quay_port"
say "Quay is at $quay_url"

control_url="http://127.0.0.1:$control_port"
# seed stands in for a Quay admin clicking through the UI (zero-touch mode:
# nobody holds a Quay token).
seed() { run curl -sS -X POST -H 'Content-Type: application/json' -d "$2" "$control_url/$1"; }

if [ "$mode" = token ]; then
	# Quay's programmatic bootstrap wrote {"access_token": "..."} for the
	# superuser named in BOOTSTRAP_TOKEN_OWNER; keep just the token, in a file.
	bootstrap=$(sed -n 's/.*"access_token"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$work/quay-machine-token.json")
	[ -n "$bootstrap" ] || fail "no bootstrap token in $work/quay-machine-token.json"
	secrets+=("$bootstrap")
	printf '%s' "$bootstrap" >"$work/bootstrap-token"
	chmod 600 "$work/bootstrap-token"

	step "Create the organization whose credentials Vault will issue, and a repository (Quay API, bootstrap token)"
	run curl -sS -X POST -H "Authorization: Bearer $bootstrap" -H 'Content-Type: application/json' \
		-d "{\"name\": \"$org\", \"email\": \"$org@example.com\"}" "$quay_url/api/v1/organization/"
	run curl -sS -X POST -H "Authorization: Bearer $bootstrap" -H 'Content-Type: application/json' \
		-d "{\"namespace\": \"$org\", \"repository\": \"app\", \"visibility\": \"private\", \"description\": \"\"}" \
		"$quay_url/api/v1/repository"
fi

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
if [ "$mode" = initialize ]; then
	say "Zero-touch: Vault creates Quay's first user with a password it generates and never shows,"
	say "then mints its own root token in organization vault-root and revokes the 9000-second one."
	run vault write quay/config url="$quay_url" bootstrap=initialize username=quayadmin root_organization=vault-root
	step "Create the organization whose credentials Vault will issue, and a repository (a Quay admin would use the UI)"
	seed organizations "{\"name\": \"$org\", \"admin\": \"quayadmin\"}"
	seed repositories "{\"namespace\": \"$org\", \"name\": \"app\"}"
else
	say "The recommended way: the engine trades Quay's bootstrap token for a root token of its own in"
	say "organization vault-root (created if missing; only the scopes it needs; rotated by the engine),"
	say "and revokes the bootstrap token once Quay has confirmed that it is one."
	run vault write quay/config url="$quay_url" token=@"$work/bootstrap-token" root_organization=vault-root
	code=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $bootstrap" "$quay_url/api/v1/user/")
	say "=> the bootstrap token is refused now: HTTP $code"
	[ "$code" = 401 ] || fail "Quay answered $code to the bootstrap token, want 401"
fi
say "(vault read quay/config shows the same: never a credential, but its owner, fingerprint, expiry and schedule.)"

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

# --- Robots --------------------------------------------------------------------
registry="127.0.0.1:$quay_port"

step "A role that issues docker-ready robots allowed to push to $org/app"
run vault write quay/roles/pusher namespace_name="$org" repositories='{"app": "write"}' ttl=15m max_ttl=1h

step "Read robot credentials: username, password, and a ready ~/.docker/config.json"
say "\$ vault read -format=json quay/creds/pusher"
robot=$(vault read -format=json quay/creds/pusher)
robot_user=$(printf '%s\n' "$robot" | sed -n 's/^ *"username": "\([^"]*\)".*/\1/p')
robot_pass=$(printf '%s\n' "$robot" | sed -n 's/^ *"password": "\([^"]*\)".*/\1/p')
robot_auth=$(printf '%s\n' "$robot" | sed -n 's/^ *"auth": "\([^"]*\)".*/\1/p')
[ -n "$robot_user" ] && [ -n "$robot_pass" ] || fail "no robot in: $(mask "$robot")"
secrets+=("$robot_pass" "$robot_auth")
mask "$robot"
# The same file Vault Agent renders with {{ .Data.docker_config_json }}.
mkdir -p "$work/home/.docker"
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$registry" "$robot_auth" >"$work/home/.docker/config.json"
chmod 600 "$work/home/.docker/config.json"

# make_image writes a one-layer OCI image layout to $1 (no network needed).
make_image() {
	local dir=$1 tmp=$work/layer
	mkdir -p "$dir/blobs/sha256" "$tmp"
	printf 'hello from vault-plugin-secrets-quay\n' >"$tmp/hello.txt"
	tar -C "$tmp" -cf "$tmp/layer.tar" hello.txt
	gzip -n -c "$tmp/layer.tar" >"$tmp/layer.tar.gz"
	local diff_id layer layer_size cfg cfg_digest manifest man_digest
	diff_id=$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)
	layer=$(sha256sum "$tmp/layer.tar.gz" | cut -d' ' -f1)
	layer_size=$(stat -c %s "$tmp/layer.tar.gz")
	cp "$tmp/layer.tar.gz" "$dir/blobs/sha256/$layer"
	cfg='{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:'$diff_id'"]}}'
	printf '%s' "$cfg" >"$tmp/config.json"
	cfg_digest=$(sha256sum "$tmp/config.json" | cut -d' ' -f1)
	cp "$tmp/config.json" "$dir/blobs/sha256/$cfg_digest"
	manifest='{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'$cfg_digest'","size":'${#cfg}'},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:'$layer'","size":'$layer_size'}]}'
	printf '%s' "$manifest" >"$tmp/manifest.json"
	man_digest=$(sha256sum "$tmp/manifest.json" | cut -d' ' -f1)
	cp "$tmp/manifest.json" "$dir/blobs/sha256/$man_digest"
	printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
	printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}' \
		"$man_digest" "${#manifest}" >"$dir/index.json"
}

if command -v skopeo >/dev/null 2>&1; then
	step "Push an image with skopeo and the rendered config.json (the emulator's registry speaks plain HTTP)"
	make_image "$work/image"
	run skopeo copy --authfile "$work/home/.docker/config.json" --dest-tls-verify=false \
		oci:"$work/image":v1 docker://"$registry/$org/app:v1"
	run skopeo inspect --authfile "$work/home/.docker/config.json" --tls-verify=false --format '{{.Digest}}' \
		docker://"$registry/$org/app:v1"

	step "Revoke the robot's lease: Vault deletes the robot in Quay"
	run vault lease revoke -sync -prefix quay/creds/pusher

	step "The same config.json is refused now"
	if run skopeo inspect --authfile "$work/home/.docker/config.json" --tls-verify=false docker://"$registry/$org/app:v1"; then
		fail "the registry still accepts the revoked robot"
	fi
	say "=> refused, as it should be"
else
	step "skopeo is not installed: use the Docker registry token flow with curl instead"
	run curl -sS -o /dev/null -w '%{http_code}\n' -u "$robot_user:$robot_pass" \
		"$quay_url/v2/auth?service=$registry&scope=repository:$org/app:push,pull"
	run vault lease revoke -sync -prefix quay/creds/pusher
	code=$(curl -sS -o /dev/null -w '%{http_code}' -u "$robot_user:$robot_pass" "$quay_url/v2/auth?service=$registry&scope=repository:$org/app:pull")
	say "=> HTTP $code after revocation"
	[ "$code" = 401 ] || fail "the registry still accepts the revoked robot"
fi

# registry_code prints the status of a registry login (Docker's token flow)
# as user $1 with password $2.
registry_code() {
	curl -sS -o /dev/null -w '%{http_code}' -u "$1:$2" "$quay_url/v2/auth?service=$registry&scope=repository:$org/app:pull"
}
# field prints a string field of Vault's JSON answer $1.
field() { printf '%s\n' "$1" | sed -n 's/^ *"'"$2"'": "\([^"]*\)".*/\1/p'; }

# --- Static robot ----------------------------------------------------------------
step "A static robot: one long-lived robot whose token Vault holds and rotates (pull secrets)"
run vault write quay/static-roles/puller namespace_name="$org" repositories='{"app": "read"}' rotation_period=24h
say "\$ vault read -format=json quay/static-creds/puller"
static=$(vault read -format=json quay/static-creds/puller)
static_user=$(field "$static" username)
old_pass=$(field "$static" password)
[ -n "$static_user" ] && [ -n "$old_pass" ] || fail "no static robot in: $(mask "$static")"
secrets+=("$old_pass" "$(field "$static" auth)")
mask "$static"

step "Rotate it now (also done every rotation_period): the old token stops working at once"
run vault write -f quay/rotate-role/puller
static=$(vault read -format=json quay/static-creds/puller)
new_pass=$(field "$static" password)
secrets+=("$new_pass" "$(field "$static" auth)")
[ -n "$new_pass" ] && [ "$new_pass" != "$old_pass" ] || fail "the static robot's password did not change"
old_code=$(registry_code "$static_user" "$old_pass")
new_code=$(registry_code "$static_user" "$new_pass")
say "=> registry login of $static_user with the old token: HTTP $old_code; with the new one: HTTP $new_code"
[ "$old_code" = 401 ] && [ "$new_code" = 200 ] || fail "want 401 for the old token and 200 for the new one"

# --- Tidy ------------------------------------------------------------------------
step "Tidy: a robot whose lease Vault forgot"
say "Quay fails every robot deletion for a while (the emulator's control API injects a 500), and an"
say "operator force-revokes the lease anyway: Vault forgets the lease, the robot stays in Quay."
lost=$(vault read -format=json quay/creds/pusher)
lost_user=$(field "$lost" username)
secrets+=("$(field "$lost" password)" "$(field "$lost" auth)")
[ -n "$lost_user" ] || fail "no robot in: $(mask "$lost")"
say "\$ vault read quay/creds/pusher    # username $lost_user"
seed faults '{"route": "deleteOrgRobot", "status": 500}'
run vault lease revoke -force -prefix quay/creds/pusher
run curl -sS -X DELETE "$control_url/faults"
run curl -sS "$control_url/robots/exists?username=${lost_user/+/%2B}"
run vault write quay/tidy dry_run=true
say "Tidy keeps $lost_user for now (robots_owned): the engine's index of issued robots vouches for it"
say "until its lease's max TTL (1h) plus 5 minutes have passed, in case Vault still holds the lease."
say "After that, 'vault write -f quay/tidy' (or config tidy_interval) deletes it; see docs/troubleshooting.md."

step "Done: stopping Vault and the emulator"
