# The pipeline operations console. `make run` and `make test` are all a
# newcomer needs; both install whatever is missing first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BIN ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
PYTEST_ARGS ?=

.PHONY: help venv env services services-stop services-status migrate topics admin \
        supervisord-conf run ps monitoring-deps helm-deps tracing-deps tracing-up tracing-down test test-fast test-chaos check-compose bench-ingest bench-orders bench-api bench-consumer clean

help:  ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON_BIN) -m venv $(VENV) || { \
	  echo "python venv is missing: installing python3-venv"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON_BIN) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	@touch $@

venv: $(VENV)/.installed  ## Create .venv and install requirements.txt

.env:
	@echo "writing .env for the private development services"
	@{ echo "SECRET_KEY=$$(head -c 48 /dev/urandom | base64 | tr -d '/+=\n')"; \
	   echo "DEBUG=true"; \
	   scripts/services.sh urls; } > .env

env: .env  ## Write .env (secret key and service URLs) if it is missing
	@mkdir -p .run/static

services: venv env  ## Start PostgreSQL, Redis and Kafka (private, 127.0.0.1) unless configured
	@scripts/services.sh up

services-stop:  ## Stop the services that `make services` started
	@scripts/services.sh down

services-status:  ## Show which services are up
	@scripts/services.sh status

migrate: services
	$(MANAGE) migrate --noinput

topics: services
	$(MANAGE) create_topics

admin: migrate  ## Create the admin user (prints its password once) and the operators group
	$(MANAGE) ensure_admin

supervisord-conf: venv env
	@$(PY) scripts/supervisord_conf.py > .run/supervisord.conf.tmp
	@mv .run/supervisord.conf.tmp .run/supervisord.conf

run: migrate topics admin supervisord-conf  ## Run the whole stack under supervisord: web, Celery worker and beat, every consumer
	@echo ""
	@echo "  Admin:        http://127.0.0.1:$${WEB_PORT:-8000}/admin/"
	@echo "  API:          http://127.0.0.1:$${WEB_PORT:-8000}/api/"
	@echo "  API docs:     http://127.0.0.1:$${WEB_PORT:-8000}/api/docs/"
	@echo "  Health:       http://127.0.0.1:$${WEB_PORT:-8000}/healthz"
	@echo "  make ps shows every process; a crashed one is restarted, the others keep running."
	@echo "  Ctrl-C stops everything (the services keep running: make services-stop)."
	@echo ""
	$(VENV)/bin/supervisord -c .run/supervisord.conf

ps:  ## Show the state of every process of `make run`
	@$(VENV)/bin/supervisorctl -c .run/supervisord.conf status

browser-deps:  ## Install Debian's Chromium for the browser tests when it is missing
	@test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver; }

# promtool and prometheus for tests/deploy (the shipped rules and dashboard). The Debian package
# would also start a system Prometheus on :9090: the suite needs the binaries only, so a service
# that the install itself started is stopped and disabled again.
monitoring-deps:  ## Install Debian's prometheus (promtool) for the monitoring-kit tests when it is missing
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus && \
	  if [ -d /run/systemd/system ]; then systemctl disable --now prometheus >/dev/null 2>&1 || true; fi; }

# helm for tests/deploy/test_helm.py (the chart in deploy/helm/console), built once per machine
# from its Go module into ~/.cache/console-helm/<version>/: 3 min 10 s measured on 2 cores with an
# empty Go module cache (it downloads about 550 MB of modules); then nothing.
# Go is the machine's (/usr/local/go/bin/go, or `go` on the PATH).
HELM_VERSION := v4.3.2
HELM := $(HOME)/.cache/console-helm/$(HELM_VERSION)/helm
GO ?= $(or $(shell command -v go),/usr/local/go/bin/go)

$(HELM):
	@test -x "$(GO)" || { echo "helm-deps: Go is missing (looked for go on the PATH and /usr/local/go/bin/go)"; exit 1; }
	@mkdir -p $(@D)
	@echo "building helm $(HELM_VERSION) from its Go module (once per machine, a few minutes)"
	GOBIN=$(@D).tmp GOTOOLCHAIN=local $(GO) install -trimpath \
	  -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$(HELM_VERSION)" helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)
	mv $(@D).tmp/helm $@ && rmdir $(@D).tmp

helm-deps: $(HELM)  ## Build helm from its Go module for the Helm chart's tests when it is missing

# Jaeger for tests/tracing (an OpenTelemetry receiver whose HTTP query API the tests read), built
# once per machine from its Go module into ~/.cache/console-jaeger/<version>/: cmd/jaeger, the
# OpenTelemetry-collector-based binary that runs all-in-one with in-memory storage from a YAML
# config (deploy/jaeger/jaeger.yaml: every listener on 127.0.0.1; the tests move its ports). Built in the
# module's own directory, not by `go install ...@version`, which refuses it for its go.mod's replace
# directive: 9 min 5 s measured on 2 cores with an empty Go module cache while another Go build ran
# (8.5 CPU-minutes; an 85 MB binary); then nothing.
JAEGER_VERSION := v1.75.0
JAEGER := $(HOME)/.cache/console-jaeger/$(JAEGER_VERSION)/jaeger

$(JAEGER):
	@test -x "$(GO)" || { echo "tracing-deps: Go is missing (looked for go on the PATH and /usr/local/go/bin/go)"; exit 1; }
	@mkdir -p $(@D)
	@echo "building jaeger $(JAEGER_VERSION) from its Go module (once per machine, several minutes)"
	GOTOOLCHAIN=local $(GO) mod download github.com/jaegertracing/jaeger@$(JAEGER_VERSION)
	cd "$$(GOTOOLCHAIN=local $(GO) env GOMODCACHE)/github.com/jaegertracing/jaeger@$(JAEGER_VERSION)" && \
	  GOTOOLCHAIN=local GOFLAGS=-mod=readonly $(GO) build -trimpath -o $@.tmp \
	  -ldflags "-s -w -X github.com/jaegertracing/jaeger/internal/version.latestVersion=$(JAEGER_VERSION)" ./cmd/jaeger
	mv $@.tmp $@

tracing-deps: $(JAEGER)  ## Build Jaeger from its Go module for the tracing tests when it is missing

JAEGER_PID := .run/jaeger.pid
tracing-up: $(JAEGER)  ## Start Jaeger on 127.0.0.1 (OTLP/HTTP :4318, query API :16686) for OTEL_EXPORTER_OTLP_ENDPOINT
	@mkdir -p .run
	@if [ -f $(JAEGER_PID) ] && kill -0 $$(cat $(JAEGER_PID)) 2>/dev/null; then echo "jaeger: already running"; \
	else nohup $(JAEGER) --config deploy/jaeger/jaeger.yaml > .run/jaeger.log 2>&1 & echo $$! > $(JAEGER_PID); \
	  for i in $$(seq 1 60); do curl -sf http://127.0.0.1:16686/api/services >/dev/null && break; sleep 0.5; done; \
	  curl -sf http://127.0.0.1:16686/api/services >/dev/null || { echo "jaeger did not start: .run/jaeger.log"; exit 1; }; \
	  echo "jaeger: OTLP http://127.0.0.1:4318, query API http://127.0.0.1:16686 (log .run/jaeger.log)"; fi

tracing-down:  ## Stop the Jaeger of `make tracing-up`
	@if [ -f $(JAEGER_PID) ]; then kill $$(cat $(JAEGER_PID)) 2>/dev/null || true; rm -f $(JAEGER_PID); echo "jaeger: stopped"; fi

test: services check-compose browser-deps monitoring-deps helm-deps tracing-deps  ## Run the test suite against the real services
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: venv env  ## The fast tier: pure logic and PostgreSQL-only tests (no Kafka, Redis, worker or browser)
	@scripts/services.sh start postgres
	KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9 REDIS_URL=redis://127.0.0.1:9/0 $(PY) -m pytest -m "not services" -p no:randomly $(PYTEST_ARGS)

# Stops and starts the shared services: runs under /tmp/chaos.lock once no other pytest runs
# (tests/chaos/with_lock.sh); then the hypothesis fuzz tests, if tests/fuzz exists.
test-chaos: services  ## Fault-injection suite: services stopped/restarted and processes SIGKILLed under load
	tests/chaos/with_lock.sh env CHAOS=1 $(PY) -m pytest tests/chaos -p no:randomly -s $(PYTEST_ARGS) \
	  $(if $(wildcard tests/fuzz),::: env FUZZ_EXAMPLES=1000 FUZZ_API_EXAMPLES=100 $(PY) -m pytest tests/fuzz -p no:randomly -s $(PYTEST_ARGS))

screenshots: services browser-deps  ## Refresh docs/images/ from the browser tests
	SCREENSHOT_DIR=$(CURDIR)/docs/images $(PY) -m pytest -m browser $(PYTEST_ARGS)

bench-ingest: migrate  ## Benchmark file ingestion: 1M-row file, event -> rows -> aggregates vs psql \copy
	$(PY) bench/ingest.py $(BENCH_ARGS)

# Quix Streams needs confluent-kafka < 2.13 (the console pins 2.16), so it gets its own virtualenv.
BENCH_QUIX_VENV := .run/bench-quix
$(BENCH_QUIX_VENV)/.installed: requirements-bench.txt
	@test -x $(BENCH_QUIX_VENV)/bin/python || $(PYTHON_BIN) -m venv $(BENCH_QUIX_VENV)
	$(BENCH_QUIX_VENV)/bin/pip install -q -r requirements-bench.txt
	@touch $@

bench-orders: migrate $(BENCH_QUIX_VENV)/.installed  ## Benchmark the order pipeline: console vs Quix Streams
	$(PY) bench/orders.py $(BENCH_ARGS)

bench-api: migrate  ## Benchmark the event API (single POSTs with wrk, batches) vs an empty ASGI app
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(PY) bench/api.py $(BENCH_ARGS)

bench-consumer: migrate  ## Benchmark run_consumer telemetry vs a bare consume loop (and arroyo)
	$(PY) bench/consumer.py $(BENCH_ARGS)

check-compose:  ## Validate docker-compose.yml (needs Debian's docker-compose)
	@command -v docker-compose >/dev/null || { apt-get update -qq && apt-get install -y -qq docker-compose; }
	SECRET_KEY=x POSTGRES_PASSWORD=x REDIS_PASSWORD=x ALLOWED_HOSTS=console.example.com \
	  docker-compose -f docker-compose.yml config -q && echo "docker-compose.yml is valid"

clean:  ## Stop the services and remove .run/ (all local data)
	-scripts/services.sh down
	rm -rf .run
