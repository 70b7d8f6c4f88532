# eventgate developer targets. `make test` is what CI runs.
GO ?= go
FUZZTIME ?= 30s

.PHONY: test run bench lint lint-openapi deps fuzz soak

# SOAK is how long `make soak` runs TestSoak (`make test` runs it for 30s).
SOAK ?= 5m

# deps installs what the tests need that Go does not bring: Debian's
# chromium for the dashboard's browser tests (skipped when present).
deps:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing chromium (Debian package) for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: deps
	$(GO) test -race -timeout 15m ./...
	$(GO) test -count=1 -run 'IdleStreamParks' ./gateway/ # stack sizes: a build without -race

run:
	$(GO) run .

GOLANGCI_LINT_VERSION ?= v2.15.0

# lint: go vet, gofmt, and golangci-lint (pinned; .golangci.yml). The first
# run builds golangci-lint from the Go module proxy, which takes minutes.
lint:
	$(GO) vet ./...
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION) run ./...

# lint-openapi lints openapi.yaml with Redocly and Spectral (pinned, from
# npm; needs Node). Run by hand, not in CI. Any warning fails it but those
# accepted, with their reasons, in .redocly.lint-ignore.yaml and
# .spectral.yaml.
REDOCLY_VERSION ?= 2.77.0
SPECTRAL_VERSION ?= 6.16.3
lint-openapi:
	npx --yes @redocly/cli@$(REDOCLY_VERSION) lint --extends recommended-strict openapi.yaml
	npx --yes @stoplight/spectral-cli@$(SPECTRAL_VERSION) lint --fail-severity warn openapi.yaml

# bench runs the Go micro-benchmarks (BENCH selects them, default all)
# six times into bench.txt and summarises them with benchstat, against the
# previous bench.txt (kept as bench.old.txt) when there is one; then a short
# load pass with bench/load comparing eventgate with its baselines, each
# figure a median of 3 runs with the baselines measured in the same run
# (see docs/BENCHMARKS.md). LOADTIME is each load run's length.
BENCH ?= .
LOADTIME ?= 5s
BENCHSTAT = $(shell $(GO) env GOPATH)/bin/benchstat
CENTRIFUGO = $(shell $(GO) env GOPATH)/bin/centrifugo
bench:
	@test -x $(BENCHSTAT) || $(GO) install golang.org/x/perf/cmd/benchstat@latest
	@test -x $(CENTRIFUGO) || command -v centrifugo >/dev/null 2>&1 || \
		$(GO) install github.com/centrifugal/centrifugo/v6@v6.9.1
	@if [ -f bench.txt ]; then mv bench.txt bench.old.txt; fi
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count 6 ./... | tee bench.txt
	@if [ -f bench.old.txt ]; then $(BENCHSTAT) bench.old.txt bench.txt; else $(BENCHSTAT) bench.txt; fi
	@uptime
	$(GO) run ./bench/load compare ingest --runs 3 --duration $(LOADTIME) --batch 1
	$(GO) run ./bench/load compare ingest --runs 3 --duration $(LOADTIME) --batch 100
	$(GO) run ./bench/load compare fanout --runs 3 --duration 3s --subs 100 --rate 100,1000,2000,4000,8000,12000
	$(GO) run ./bench/load webhook --runs 3 --events 50000
	$(GO) run ./bench/load webhook --runs 3 --rate 1000 --duration $(LOADTIME)
	@uptime

# fuzz runs every fuzzer for FUZZTIME each; `make test` runs their seed
# corpora (testdata/fuzz) as ordinary tests.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

# soak runs the mixed-load soak (TestSoak) for SOAK against the real gateway.
soak:
	EVENTGATE_SOAK=$(SOAK) $(GO) test -race -run '^TestSoak$$' -timeout 2h -count 1 -v .
