# costpipe — run `make help` for the targets.
SHELL := /bin/bash
GO ?= go
PKGS := ./...
# The packages whose tests take longest, longest first (measured with
# `go test -race -v ./...`; docs/BENCHMARKS.md, "Test suite time"): go test starts
# packages in the order given (then the rest of ./..., each once), so on two
# cores the long ones no longer start last and finish alone while a core
# idles.
SLOW_PKGS := ./e2e ./cmd/costpipe ./analytics ./warehouse ./producers ./serve ./alerts ./consumers \
	./pipelines/pricing/litellm ./producers/ingest ./broker ./pipelines/usage ./producers/loadgen ./analytics/growth
FUZZTIME ?= 60s
BENCHTIME ?= 1s
BIN := bin/costpipe
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "; printf "Targets:\n"} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build bin/costpipe.
	VERSION=$(VERSION) scripts/build.sh $(BIN)

.PHONY: vet
vet: ## gofmt check and go vet.
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

.PHONY: deps
deps: ## Install what the tests and the demo need when missing: ClickHouse (Debian's 18.16), kcat, chromium, zookeeper, docker-compose, gcc (needs root then; a no-op otherwise).
	scripts/install-deps.sh

# e2e and cmd/costpipe run the costpipe binary; it is built once, first
# (COSTPIPE_TEST_BIN): both test binaries built it at the same moment.
# (Running e2e without -race beside the others saved CPU but made its
# timing-sensitive tests wait on a machine loaded by three packages at once.)
# -ldflags=-w: no DWARF in the test binaries (race reports and panics read
# the symbol table, not DWARF), which halves each link: cmd/costpipe's race
# test binary linked in 10.6 s with it and 4.6 s without.
.PHONY: test
test: deps vet ## Install missing deps, vet, then unit + integration tests (real ClickHouse and Kafka protocol) under the race detector.
	@bin=$$(mktemp -d); trap 'rm -rf $$bin' EXIT; $(GO) build -ldflags=-w -o $$bin/costpipe ./cmd/costpipe || exit 1; \
	COSTPIPE_TEST_BIN=$$bin/costpipe $(GO) test -race -ldflags=-w -count=1 -timeout 9m $(SLOW_PKGS) $(PKGS)

.PHONY: compat
compat: deps ## Replay every statement a costpipe run sends on ClickHouse 26.5 (libchdb, downloaded once into .costpipe/) and on 18.16, and compare the answers.
	scripts/check-clickhouse-current.sh

.PHONY: test-short
test-short: ## Unit tests only (no servers), fast.
	$(GO) test -short -count=1 $(PKGS)

.PHONY: bench
bench: ## Hot-path benchmarks on one core (events/s); record results in docs/BENCHMARKS.md.
	$(GO) test -run='^$$' -bench=. -benchmem -cpu 1 -benchtime=$(BENCHTIME) ./schemas/... ./pipelines/... ./consumers/ ./producers/...

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each (default 60s).
	@set -e; for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/func //'); do \
	    echo "== $$pkg $$t ($(FUZZTIME))"; \
	    $(GO) test -run='^$$' -fuzz="^$$t\$$" -fuzztime=$(FUZZTIME) $$pkg; \
	  done; done

.PHONY: demo
demo: ## Install deps if missing, start ClickHouse under .costpipe/, run the whole pipeline for ~30 s and print a report.
	scripts/demo.sh

COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
COMPOSE_FILES ?= -f docker-compose.yml
SECRETS_DIR ?= deploy/secrets

.PHONY: up
up: ## Start the production-like stack (docker-compose.yml; random secrets in deploy/secrets/ on first run). COMPOSE_FILES="-f docker-compose.yml -f docker-compose.cluster.yml" for 2 shards.
	@mkdir -p $(SECRETS_DIR) && chmod 700 $(SECRETS_DIR)
	@for f in clickhouse_password grafana_admin_password; do \
	  [ -s $(SECRETS_DIR)/$$f ] || { head -c 24 /dev/urandom | base64 | tr -d '/+=\n' > $(SECRETS_DIR)/$$f; echo "wrote $(SECRETS_DIR)/$$f"; }; done
	@for f in ingest_keys serve_keys; do \
	  [ -s $(SECRETS_DIR)/$$f ] || { echo "$$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n') *" > $(SECRETS_DIR)/$$f; echo "wrote $(SECRETS_DIR)/$$f (one key for every tenant; see deploy/keys.example.txt)"; }; done
	@chmod 644 $(SECRETS_DIR)/* # the containers' users read them; the directory (700) keeps other users out
	COSTPIPE_SECRETS_DIR=./$(SECRETS_DIR) $(COMPOSE) $(COMPOSE_FILES) up -d --build $(ARGS)
	@echo "started; \`$(COMPOSE) ps\` shows health. Grafana: http://127.0.0.1:3000 (admin, password in $(SECRETS_DIR)/grafana_admin_password)"

.PHONY: down
down: ## Stop the stack; volumes stay (ARGS=-v removes them too).
	COSTPIPE_SECRETS_DIR=./$(SECRETS_DIR) $(COMPOSE) $(COMPOSE_FILES) down $(ARGS)

.PHONY: clean
clean: ## Remove build output and local state (.costpipe/).
	rm -rf bin .costpipe
