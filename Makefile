# vault-plugin-secrets-quay
#
#   make build      plugin -> bin/plugins/vault-plugin-secrets-quay, emulator -> bin/quay-emulator
#   make vault      real Vault v1.21.0 -> bin/vault (built once from scripts/tools; ~10-15 min cold)
#   make test       test-unit, then test-e2e (real Vault + Quay emulator processes)
#   make bench      Go benchmarks (quay/, backend/) and the e2e creds benchmarks (vs kv, federated vs dynamic robot)
#   make demo       end-to-end walk-through with the real vault CLI (scripts/demo.sh)
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

E2E_TIMEOUT ?= 30m
DEMO_BOOTSTRAP ?= token
# Packages of the plugin module without the e2e suite (its files carry the
# e2e build tag, so it is excluded explicitly to keep test-unit unit-only).
UNIT_PKGS = $$($(GO) list ./... | grep -v '/e2e$$')

.PHONY: build plugin emulator vault test test-unit test-e2e bench demo fmt vet clean distclean

build: plugin emulator

# Go's build cache makes these cheap when nothing changed, so they always run.
plugin:
	@mkdir -p $(PLUGIN_DIR)
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(PLUGIN) ./cmd/$(PLUGIN_NAME)

emulator:
	@mkdir -p $(BIN)
	$(GO) build -trimpath -o $(EMULATOR) ./cmd/quay-emulator

# Vault is built only when bin/vault is missing: a cold build downloads about
# 3.8 GB of modules. Written under a temporary name so an interrupted build
# never leaves a truncated bin/vault behind.
vault: $(VAULT)

$(VAULT):
	@mkdir -p $(BIN)
	@echo "building Vault v1.21.0 from scripts/tools (cold: ~10-15 min)"
	cd scripts/tools && CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(VAULT).tmp github.com/hashicorp/vault
	mv -f $(VAULT).tmp $(VAULT)

test: test-unit test-e2e

test-unit:
	$(GO) test -race -count=1 $(UNIT_PKGS)

# The suite builds its own plugin and emulator binaries into a temporary
# directory; `build` here just fails early, with a readable error, when the
# tree does not compile.
test-e2e: vault build
	VAULT_BINARY=$(VAULT) $(GO) test -tags e2e -count=1 -timeout $(E2E_TIMEOUT) ./e2e/...

bench: vault build
	$(GO) test -run '^$$' -bench . -benchmem ./quay/... ./backend/...
	VAULT_BINARY=$(VAULT) $(GO) test -tags e2e -run '^$$' -bench 'BenchmarkCredsReadVsKV|BenchmarkCredsFederatedVsDynamicRobot' -benchmem -timeout $(E2E_TIMEOUT) ./e2e/...

# DEMO_BOOTSTRAP=initialize runs the zero-touch path (Vault creates Quay's first user).
demo: vault build
	DEMO_BOOTSTRAP=$(DEMO_BOOTSTRAP) VAULT_BINARY=$(VAULT) PLUGIN_BINARY=$(PLUGIN) EMULATOR_BINARY=$(EMULATOR) ./scripts/demo.sh

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
