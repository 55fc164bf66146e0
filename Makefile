# vault-plugin-secrets-quay
#
#   make build      plugin -> bin/plugins/vault-plugin-secrets-quay, emulator -> bin/quay-emulator
#   make vault      bin/vault: VAULT_BINARY or a `vault` >= 1.15 on PATH, else Vault v1.21.0 built
#                   once from scripts/tools (cold: 15-40 min on 2 cores)
#   make test       test-unit, test-e2e (real Vault + Quay emulator processes), docs-check
#   make test-realquay  the e2e suite and the conformance table against Quay 3.18.0
#                   itself (REALQUAY_DIR, default ../shared/realquay)
#   make bench      Go benchmarks (quay/, backend/), the e2e side-by-side benchmark (kv builtin/external,
#                   token create, creds; revoke -prefix; plugin RSS), federated vs dynamic robot and
#                   static-creds healthy vs healing
#   make chaos      chaos soak on a 3-node Raft cluster (CHAOS_CYCLES=1000, CHAOS_SEED)
#   make demo       end-to-end walk-through with the real vault CLI (scripts/demo.sh);
#                   QUAY=real tells it against Quay 3.18.0
#   make sandbox    leave an emulator and a dev Vault with the plugin running (sandbox-stop stops them)
#   make docs-check run every example in docs/ against a sandbox of its own
#   make fmt vet clean distclean

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO     ?= go
MODULE := github.com/quay-vault/vault-plugin-secrets-quay
BIN    := $(CURDIR)/bin

# Vault insists on semantic versions (`vault plugin register -version=vX.Y.Z`
# must equal what the binary reports), so only v-tags are described; without
# one the version is v0.1.0.
VERSION ?= $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null || echo v0.1.0)

PLUGIN_NAME := vault-plugin-secrets-quay
PLUGIN_DIR  := $(BIN)/plugins
PLUGIN      := $(PLUGIN_DIR)/$(PLUGIN_NAME)
EMULATOR    := $(BIN)/quay-emulator
VAULT       := $(BIN)/vault
LDFLAGS     := -X $(MODULE)/version.Version=$(VERSION)

E2E_TIMEOUT ?= 45m
REALQUAY_TIMEOUT ?= 60m
DEMO_BOOTSTRAP ?= token
# QUAY=real runs the demo against Quay 3.18.0 (realquay's start.sh) instead
# of the emulator.
QUAY ?= emulator
REALQUAY_DIR ?= $(abspath $(CURDIR)/../shared/realquay)
# Packages of the plugin module without the e2e suite (its files carry the
# e2e build tag, so it is excluded explicitly to keep test-unit unit-only).
UNIT_PKGS = $$($(GO) list ./... | grep -v '/e2e$$')

.PHONY: build plugin emulator vault kv-plugin test test-unit test-e2e test-realquay bench chaos demo fmt vet clean distclean
.PHONY: sandbox sandbox-stop docs-check

build: plugin emulator

# Go's build cache makes these cheap when nothing changed, so they always run.
plugin:
	@mkdir -p $(PLUGIN_DIR)
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(PLUGIN) ./cmd/$(PLUGIN_NAME)

emulator:
	@mkdir -p $(BIN)
	$(GO) build -trimpath -o $(EMULATOR) ./cmd/quay-emulator

# bin/vault is VAULT_BINARY, or itself, or a `vault` >= 1.15 on PATH, linked;
# Vault is built from scripts/tools only when none of them is usable (a cold
# build downloads about 3.8 GB of modules). See scripts/ensure-vault.sh.
vault:
	@VAULT_BINARY="$(VAULT_BINARY)" GO="$(GO)" scripts/ensure-vault.sh $(VAULT)

test: test-unit test-e2e docs-check

test-unit:
	$(GO) test -race -count=1 $(UNIT_PKGS)

# The suite builds its own plugin and emulator binaries into a temporary
# directory; `build` here just fails early, with a readable error, when the
# tree does not compile.
test-e2e: vault build
	VAULT_BINARY=$(VAULT) $(GO) test -tags e2e -count=1 -timeout $(E2E_TIMEOUT) ./e2e/...

# The same e2e suite against Quay 3.18.0 (one server shared by the run, each
# test in organizations of its own, a fault proxy per test), plus the
# differential conformance table (emulator vs real Quay, every route).
test-realquay: vault build
	E2E_QUAY=real REALQUAY_DIR=$(REALQUAY_DIR) VAULT_BINARY=$(VAULT) $(GO) test -tags e2e -count=1 -timeout $(REALQUAY_TIMEOUT) ./e2e/...

# HashiCorp's kv engine as an external plugin, from the module proxy at the
# version Vault v1.21.0 builds in (scripts/tools): the floor of any external
# plugin request in `make bench`.
KV_PLUGIN := $(BIN)/bench/vault-plugin-secrets-kv

kv-plugin: $(KV_PLUGIN)

$(KV_PLUGIN):
	@mkdir -p $(dir $(KV_PLUGIN))
	cd scripts/tools && CGO_ENABLED=0 $(GO) build -trimpath -o $(KV_PLUGIN).tmp github.com/hashicorp/vault-plugin-secrets-kv/cmd/vault-plugin-secrets-kv
	mv -f $(KV_PLUGIN).tmp $(KV_PLUGIN)

BENCHTIME ?= 2s

bench: vault build kv-plugin
	$(GO) test -run '^$$' -bench . -benchmem ./quay/... ./backend/...
	VAULT_BINARY=$(VAULT) KV_PLUGIN_BINARY=$(KV_PLUGIN) $(GO) test -tags e2e -run '^$$' -bench 'BenchmarkSideBySide|BenchmarkCredsFederatedVsDynamicRobot|BenchmarkStaticCredsRead' -benchtime $(BENCHTIME) -timeout $(E2E_TIMEOUT) ./e2e/...

# A Quay emulator and a dev Vault with the plugin at quay/ that keep running
# (in .sandbox/), for trying the docs' examples; it prints the export lines.
sandbox: vault build
	@VAULT_BINARY=$(VAULT) PLUGIN_BINARY=$(PLUGIN) EMULATOR_BINARY=$(EMULATOR) scripts/sandbox.sh start

sandbox-stop:
	@scripts/sandbox.sh stop

# Every ```shell example in docs/, run as written against a sandbox of its own.
docs-check: vault build
	@VAULT_BINARY=$(VAULT) PLUGIN_BINARY=$(PLUGIN) EMULATOR_BINARY=$(EMULATOR) GO=$(GO) scripts/docs-check.sh

# The soak prints its table and writes it as JSON to CHAOS_REPORT; a failing
# run prints the seed to replay.
CHAOS_CYCLES ?= 1000
CHAOS_SEED ?=
CHAOS_WORKERS ?= 4
CHAOS_REPORT ?= $(BIN)/chaos-report.json
CHAOS_TIMEOUT ?= 3h

chaos: vault build
	VAULT_BINARY=$(VAULT) CHAOS_CYCLES=$(CHAOS_CYCLES) CHAOS_SEED=$(CHAOS_SEED) CHAOS_WORKERS=$(CHAOS_WORKERS) CHAOS_REPORT=$(CHAOS_REPORT) \
		$(GO) test -tags e2e -count=1 -v -run '^TestChaosSoak$$' -timeout $(CHAOS_TIMEOUT) ./e2e/

# DEMO_BOOTSTRAP=initialize runs the zero-touch path (Vault creates Quay's first user);
# QUAY=real runs Quay 3.18.0 instead of the emulator.
demo: vault build
	DEMO_BOOTSTRAP=$(DEMO_BOOTSTRAP) DEMO_QUAY=$(QUAY) REALQUAY_DIR=$(REALQUAY_DIR) VAULT_BINARY=$(VAULT) PLUGIN_BINARY=$(PLUGIN) EMULATOR_BINARY=$(EMULATOR) ./scripts/demo.sh

fmt:
	gofmt -s -w $$(git ls-files --cached --others --exclude-standard '*.go')

vet:
	$(GO) vet ./...
	$(GO) vet -tags e2e ./e2e/...

# clean keeps bin/vault (expensive to rebuild); distclean removes it too.
clean:
	rm -rf $(PLUGIN_DIR) $(EMULATOR) .demo coverage.*

distclean: clean
	rm -rf $(BIN)
