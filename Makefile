# Two commands matter: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE_MODULES_STAMP := node_modules/.package-lock.json
# Debian packages the suite needs: real etcd members and SoftHSM2 tokens are started by
# the tests themselves (never mocked, never silently skipped); openssl makes the etcd TLS
# tests' throwaway certificates; spin (and gcc for its verifier) checks the counter
# protocol model (`make model`).
TEST_APT_PACKAGES := etcd-server etcd-client softhsm2 opensc chromium-headless-shell openssl spin gcc

.PHONY: help deps test-deps build lint typecheck test test-phone demo bench bench-memory clean fleet model api-report api-check

help:
	@echo "make demo   - walk through the whole story on the embedded default"
	@echo "make test   - lint, type-check and the whole test suite"
	@echo "make test-phone - the device SDK bundled for Hermes (React Native): vectors + a backup"
	@echo "make bench  - benchmarks (prints a table, writes bench/results/*.json)"
	@echo "make bench-memory - peak RSS for a 4 GiB sparse file and 200,000 small files (restic beside)"
	@echo "make fleet  - a local vault fleet: 3 etcd members + 3 vault nodes (Ctrl-C stops it)"
	@echo "make model  - model-check the vault's attempt-counter protocol (spin, < 1 min)"
	@echo "make api-report - rewrite the public API reports and reference (docs/api/)"

$(NODE_MODULES_STAMP): package.json package-lock.json packages/*/package.json
	@command -v node >/dev/null || { echo "node (>= 20) is required: install Node.js 20 or later" >&2; exit 1; }
	@node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' || { echo "Node >= 20 required, found $$(node --version)" >&2; exit 1; }
	@# A symlinked node_modules is a shared install (git worktrees): npm ci would empty the
	@# target through the link and break every tree that uses it. Leave it to its owner.
	@if [ -L node_modules ]; then \
	  echo "node_modules is a symlink to a shared install: not running npm ci through it" >&2; \
	else \
	  npm ci --no-audit --no-fund && touch $(NODE_MODULES_STAMP); \
	fi

deps: $(NODE_MODULES_STAMP)

test-deps: deps
	@bash scripts/apt-deps.sh $(TEST_APT_PACKAGES)

# The three packages (packages/sdk, packages/vault, packages/cli: each into its own dist/)
# and then the tests, bench and scripts (dist/), in one incremental `tsc -b`.
build: deps
	npx tsc -b tsconfig.json
	node scripts/vendor-typebox.mjs
	npx tsc -p packages/cli/src/ui/web/tsconfig.json

typecheck: build

lint: deps
	npx eslint .
	npx prettier --check .


test: test-deps lint build model api-check
	bash scripts/run-tests.sh

# The device SDK's public API (issue 19): one API Extractor report per entry point and the
# reference rendered from the TSDoc, both checked in under docs/api/. api-check fails when
# the compiled API or its TSDoc differs from them (or names a type no entry point exports);
# api-report rewrites them, for the change to be reviewed in the diff.
api-report: build
	node dist/scripts/api-report.js --update

api-check: build
	node dist/scripts/api-report.js

# The device SDK bundled for Hermes, React Native's engine (hermes-engine-cli's host binary:
# no WebAssembly, no WebCrypto): every vector that needs neither, and an in-memory backup,
# restore and check with the pure-JS crypto (test/phone/). The suite runs it too
# (test/phone/hermes.test.ts).
test-phone: build
	node dist/test/phone/run.js

# The attempt-counter protocol as a Promela model (model/vault.pml), checked exhaustively
# within its bounds, plus seeded bugs that must be caught (docs/ARCHITECTURE.md).
model:
	@bash scripts/apt-deps.sh spin gcc
	bash model/check.sh

demo: build
	node dist/scripts/demo.js

# restic (Debian) is the peer measured beside backvault in the same run.
bench: build
	@bash scripts/apt-deps.sh restic
	node dist/bench/run.js
	node dist/bench/import-time.js

# Memory against shape (issue 17): a 4 GiB sparse file and 200,000 small files, restic beside.
bench-memory: build
	@bash scripts/apt-deps.sh restic
	node dist/bench/memory.js

# Three etcd members + three vault nodes on loopback (keys via the ceremony, mutual TLS to
# etcd with a throwaway CA); Ctrl-C stops all.
FLEET_APT_PACKAGES := etcd-server etcd-client softhsm2 opensc openssl
fleet: build
	@bash scripts/apt-deps.sh $(FLEET_APT_PACKAGES)
	node dist/scripts/fleet.js

clean:
	rm -rf dist packages/*/dist .tmp
