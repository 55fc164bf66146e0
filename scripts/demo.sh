#!/usr/bin/env bash
# Demo: the engine takes over Quay's bootstrap credential and mints its own
# root token, issues an OAuth token and a docker-ready robot, rotates a static
# robot, and tidies what a force-revoked lease left behind.
#
# Starts Quay (the emulator, or Quay 3.18.0 itself) and a Vault dev server on
# free loopback ports, enables and configures the plugin, and walks through
# what a user does with the real `vault` CLI. Every command is printed before
# it runs ("$ ..."). Everything is stopped and removed on exit, also on
# failure or Ctrl-C.
#
#   make demo                  # builds bin/vault, the plugin and the emulator first
#   make demo QUAY=real        # the same story against Quay 3.18.0 (REALQUAY_DIR)
#   make demo DEMO_BOOTSTRAP=initialize   # zero-touch: Vault creates Quay's first user
#   scripts/demo.sh            # if they are built already
#
# DEMO_BOOTSTRAP=token (default) starts from Quay's programmatic bootstrap
# token file, which Quay writes at a start that finds its owner: the demo
# creates the owner on the fresh Quay, restarts Quay, and reads the file.
# DEMO_BOOTSTRAP=initialize lets Vault create the owner instead; a restart
# then gives the operator a token of the owner (the file) to create the
# organization and repository with, while Vault keeps a root token of its own.
#
# DEMO_QUAY=emulator (default) runs the emulator (a restart is its control
# API's POST /restart); DEMO_QUAY=real runs Quay 3.18.0 from REALQUAY_DIR
# (default ../shared/realquay next to this checkout) with its start.sh and
# stop.sh, behind the emulator's fault layer (quay-emulator -upstream) for the
# tidy story's injected failures.
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
quay_kind=${DEMO_QUAY:-emulator}
realquay_dir=${REALQUAY_DIR:-$(dirname "$repo")/shared/realquay}
case "$quay_kind" in
emulator) ;;
real) [ -x "$realquay_dir/start.sh" ] || { echo "DEMO_QUAY=real: no realquay at $realquay_dir (set REALQUAY_DIR)" >&2; exit 1; } ;;
*) echo "DEMO_QUAY must be emulator or real" >&2; exit 1 ;;
esac

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
	if [ -d "$work/realquay" ]; then
		"$realquay_dir/stop.sh" "$work/realquay" >/dev/null 2>&1 || true
	fi
	if [ "$status" -ne 0 ]; then
		for log in "$work"/*.log "$work"/realquay/quay.log; do
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
quay_port=$(free_port 18300)
control_port=$(free_port $((quay_port + 1)))
sed -e "s|@WORKDIR@|$work|g" -e "s|@QUAY_HOST@|127.0.0.1:$quay_port|g" "$repo/scripts/demo/quay-config.yaml" >"$work/quay-config.yaml"
if [ "$quay_kind" = real ]; then
	step "Start Quay 3.18.0 (from its tagged source, on SQLite), empty, programmatic bootstrap on"
	say "\$ $realquay_dir/start.sh $quay_port quay-config.yaml realquay"
	"$realquay_dir/start.sh" "$quay_port" "$work/quay-config.yaml" "$work/realquay" >"$work/realquay-start.log" 2>&1 ||
		fail "Quay did not start: $(tail -n 20 "$work/realquay-start.log")"
	# Vault talks to Quay through the emulator's fault layer, so that the
	# tidy story below can make Quay fail robot deletions for a while.
	proxy_port=$(free_port $((control_port + 1)))
	say "\$ quay-emulator -upstream http://127.0.0.1:$quay_port -listen 127.0.0.1:$proxy_port -control-listen 127.0.0.1:$control_port &"
	setsid "$emulator_bin" -upstream "http://127.0.0.1:$quay_port" \
		-listen "127.0.0.1:$proxy_port" -control-listen "127.0.0.1:$control_port" >"$work/quay-proxy.log" 2>&1 &
	pids+=($!)
	wait_for 30 grep -q 'quay-emulator ready' "$work/quay-proxy.log" || fail "the fault proxy did not start"
	quay_url="http://127.0.0.1:$proxy_port"
	say "Quay is at http://127.0.0.1:$quay_port, reached through its fault proxy at $quay_url"
else
	step "Start the Quay emulator (an in-memory Quay 3.18), empty, programmatic bootstrap on"
	say "\$ quay-emulator -config quay-config.yaml -listen 127.0.0.1:$quay_port -control-listen 127.0.0.1:$control_port &"
	setsid "$emulator_bin" -config "$work/quay-config.yaml" \
		-listen "127.0.0.1:$quay_port" -control-listen "127.0.0.1:$control_port" >"$work/quay-emulator.log" 2>&1 &
	pids+=($!)
	wait_for 30 grep -q 'quay-emulator ready' "$work/quay-emulator.log" || fail "the emulator did not start"
	quay_url="http://127.0.0.1:$quay_port"
	say "Quay is at $quay_url"
fi
control_url="http://127.0.0.1:$control_port"

# restart_quay restarts Quay on the same database: its boot.py runs again and
# writes the bootstrap token file if the owner exists and holds none yet.
restart_quay() {
	if [ "$quay_kind" = real ]; then
		say "\$ $realquay_dir/stop.sh realquay && $realquay_dir/start.sh $quay_port quay-config.yaml realquay"
		"$realquay_dir/stop.sh" "$work/realquay" >>"$work/realquay-start.log" 2>&1
		"$realquay_dir/start.sh" "$quay_port" "$work/quay-config.yaml" "$work/realquay" >>"$work/realquay-start.log" 2>&1 ||
			fail "Quay did not start again: $(tail -n 20 "$work/realquay-start.log")"
	else
		run curl -sS -X POST "$control_url/restart" # the emulator's stand-in for a restart
	fi
}

# read_bootstrap_token keeps just the token of Quay's {"access_token": "..."}, in a file.
read_bootstrap_token() {
	bootstrap=$(sed -n 's/.*"access_token"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$work/quay-machine-token.json" 2>/dev/null || true)
	[ -n "$bootstrap" ] || fail "no bootstrap token in $work/quay-machine-token.json"
	secrets+=("$bootstrap")
	printf '%s' "$bootstrap" >"$work/bootstrap-token"
	chmod 600 "$work/bootstrap-token"
	run ls -l "$work/quay-machine-token.json"
}

# create_org_and_repo does what a Quay admin does in the UI, with the API.
create_org_and_repo() {
	step "Create the organization whose credentials Vault will issue, and a repository (Quay API, bootstrap token)"
	run curl -sS -X POST -H "Authorization: Bearer $bootstrap" -H 'Content-Type: application/json' \
		-d "{\"name\": \"$org\", \"email\": \"$org@example.com\"}" "$quay_url/api/v1/organization/"
	run curl -sS -X POST -H "Authorization: Bearer $bootstrap" -H 'Content-Type: application/json' \
		-d "{\"namespace\": \"$org\", \"repository\": \"app\", \"visibility\": \"private\", \"description\": \"\"}" \
		"$quay_url/api/v1/repository"
}

[ ! -e "$work/quay-machine-token.json" ] || fail "Quay wrote a bootstrap token before its owner existed"
say "No quay-machine-token.json yet: Quay writes it only at a start that finds BOOTSTRAP_TOKEN_OWNER."

if [ "$mode" = token ]; then
	step "Create Quay's first user, the bootstrap token's owner (POST /api/v1/user/initialize on a fresh Quay)"
	owner_password="demo-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
	secrets+=("$owner_password")
	run curl -sS -o /dev/null -w '%{http_code}\n' -X POST -H 'Content-Type: application/json' \
		-d "{\"username\": \"quayadmin\", \"password\": \"$owner_password\", \"email\": \"quayadmin@example.com\"}" \
		"$quay_url/api/v1/user/initialize"

	step "Restart Quay: at start-up it now finds the owner and writes the bootstrap token file"
	restart_quay
	read_bootstrap_token
	create_org_and_repo
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
	step "Restart Quay: the owner exists now, so Quay writes its bootstrap token, for the operator"
	restart_quay
	read_bootstrap_token
	create_org_and_repo
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
# The registry clients log in to is where Vault reaches Quay; Quay's own
# name (SERVER_HOSTNAME) is the service its tokens are for.
registry=${quay_url#http://}
service="127.0.0.1:$quay_port"

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
	step "Push an image with skopeo and the rendered config.json (Quay speaks plain HTTP here)"
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
		"$quay_url/v2/auth?service=$service&scope=repository:$org/app:push,pull"
	run vault lease revoke -sync -prefix quay/creds/pusher
	code=$(curl -sS -o /dev/null -w '%{http_code}' -u "$robot_user:$robot_pass" "$quay_url/v2/auth?service=$service&scope=repository:$org/app:pull")
	say "=> HTTP $code after revocation"
	[ "$code" = 401 ] || fail "the registry still accepts the revoked robot"
fi

# registry_code prints the status of a registry login (Docker's token flow)
# as user $1 with password $2.
registry_code() {
	curl -sS -o /dev/null -w '%{http_code}' -u "$1:$2" "$quay_url/v2/auth?service=$service&scope=repository:$org/app:pull"
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
lost_pass=$(field "$lost" password)
secrets+=("$lost_pass" "$(field "$lost" auth)")
[ -n "$lost_user" ] || fail "no robot in: $(mask "$lost")"
say "\$ vault read quay/creds/pusher    # username $lost_user"
run curl -sS -X POST -H 'Content-Type: application/json' -d '{"route": "deleteOrgRobot", "status": 500}' "$control_url/faults"
run vault lease revoke -force -prefix quay/creds/pusher
run curl -sS -X DELETE "$control_url/faults"
lost_code=$(registry_code "$lost_user" "$lost_pass")
say "=> the robot still logs in to the registry: HTTP $lost_code"
[ "$lost_code" = 200 ] || fail "the force-revoked robot is gone from Quay (HTTP $lost_code), want it left behind"
run vault write quay/tidy dry_run=true
say "Tidy keeps $lost_user for now (robots_owned): the engine's index of issued robots vouches for it"
say "until its lease's max TTL (1h) plus 5 minutes have passed, in case Vault still holds the lease."
say "After that, 'vault write -f quay/tidy' (or config tidy_interval) deletes it; see docs/troubleshooting.md."

step "Done: stopping Vault and Quay"
