# Every target creates and fills .venv on first use, so each works on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
STAMP := $(VENV)/.installed
FLASK := $(BIN)/flask --app wsgi

.PHONY: install lock run test migrate worker beat fuzz bench bench-instructions bench-scale bench-realtime bench-replicas realtime clean schema sdk

$(STAMP): setup.cfg pyproject.toml requirements.lock package.json package-lock.json
	@echo "==> installing into $(VENV) from requirements.lock (first time: about a minute)"
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --progress-bar on -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	@echo "==> the docs' browser assets (npm ci)"
	npm ci --no-audit --no-fund --omit=dev --ignore-scripts --silent
	touch $(STAMP)

install: $(STAMP)  ## the virtualenv with the app, its dev tools and the docs' browser assets (from requirements.lock)

lock: $(STAMP)  ## re-resolve requirements.lock from setup.cfg (then `make install` installs it)
	$(BIN)/pip install --quiet pip-tools
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --extra dev --strip-extras --no-emit-index-url --no-emit-find-links \
		--output-file requirements.lock setup.cfg

migrate: $(STAMP)  ## apply database migrations to the configured database
	$(FLASK) db upgrade

REALTIME_PORT ?= 8001

run: migrate  ## serve the API (gunicorn, http://$(HOST):$(PORT)) and the realtime process ($(REALTIME_PORT)); Ctrl-C stops both
	HOST=$(HOST) PORT=$(PORT) REALTIME_PORT=$(REALTIME_PORT) $(BIN)/python deploy/run.py

realtime: migrate  ## serve subscriptions (WebSocket) and SSE with uvicorn on http://$(HOST):$(REALTIME_PORT)
	$(BIN)/uvicorn webapp.realtime.asgi:app --host $(HOST) --port $(REALTIME_PORT) --no-access-log

test: $(STAMP)  ## the test suite (SQLite; set TEST_DATABASE_URL for PostgreSQL)
	$(BIN)/pytest $(PYTEST_ARGS)

schema: $(STAMP)  ## write schema.graphql, the served GraphQL schema as SDL (a test checks it is current)
	$(BIN)/python -c 'from webapp.graphql.schema import build_schema; print(build_schema().as_str())' > schema.graphql.tmp
	mv schema.graphql.tmp schema.graphql

sdk: $(STAMP)  ## build/sdk/: a typed Python client and TypeScript types from a live server's /openapi.json (needs npx)
	$(BIN)/python sdk/generate.py --out build/sdk $(if $(URL),--url $(URL))

worker: $(STAMP)  ## a Celery worker for the configured broker (REDIS_URL), both queues
	$(BIN)/celery -A tasks.worker worker --queues email,heavy --loglevel INFO

beat: $(STAMP)  ## the Celery beat scheduler for housekeeping (run exactly one)
	$(BIN)/celery -A tasks.worker beat --loglevel INFO

clean:
	rm -rf $(VENV) node_modules

bench: $(STAMP)  ## wrk against the app and the stack, Flask, strawberry and argon2 floors (PostgreSQL + Redis); table + JSON
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python bench/run.py

bench-instructions: $(STAMP)  ## instructions per request (valgrind), Delta vs the stack floor and each feature switched off
	command -v valgrind >/dev/null || (apt-get update -qq && apt-get install -y -qq valgrind)
	$(BIN)/python bench/instructions.py

fuzz: $(STAMP)  ## schemathesis against a live gunicorn: REST (all checks, all modes) and GraphQL
	bash tests/fuzz/run.sh

bench-scale: $(STAMP)  ## post reads at 1,000 and 1,000,000 posts (bulk-seeded PostgreSQL + Redis db 9): ratios
	command -v wrk >/dev/null || (sudo apt-get install -y wrk || apt-get install -y wrk)
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/scale.py

bench-realtime: $(STAMP)  ## one realtime process, SUBSCRIBERS (1000) WebSocket+SSE clients: latency from commit, KiB/connection, CPU/event, saturation
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/realtime.py --subscribers $(or $(SUBSCRIBERS),1000)

bench-replicas: $(STAMP)  ## read req/s and the primary's share of SELECTs with 0, 1, 2 streaming replicas (throw-away clusters), then the routing's instructions
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	command -v valgrind >/dev/null || (apt-get update -qq && apt-get install -y -qq valgrind)
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/replicas.py
