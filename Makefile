# Two commands matter: `make run` and `make test` (see README.md). Both work on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The value a variable has for the app: the environment, else `.env`, an empty value counting as
# unset (config/env.py's reader, as the settings use it). Usage: `$$($(ENV_VALUE) NAME)` in a recipe.
ENV_VALUE := $(BIN)/python -c 'import os, runpy, sys; runpy.run_path("config/env.py")["Env"].read_env(".env"); print(os.environ.get(sys.argv[1], ""))'
# The port `make run` (gunicorn) and `make dev` serve on: PORT from the command line or the
# environment, else `.env`, else 8000; empty counts as unset. Worked out once, when first used
# (after `install`, so `.env` is read with the venv's django-environ).
SERVE_PORT = $(eval SERVE_PORT := $(or $(PORT),$(shell $(ENV_VALUE) PORT 2>/dev/null),8000))$(SERVE_PORT)

.PHONY: install run dev test lint typecheck pytest worker beat bench fuzz load migrate bootstrap db-stop clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when a requirements file changed.
$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	@if [ -e $@ ]; then echo "Requirements changed: updating .venv…"; \
	else echo "Installing dependencies into .venv (first run, about a minute)…"; fi
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

# A random SECRET_KEY on first run; an existing .env is never overwritten.
.env:
	@$(BIN)/python -c "import secrets; print('SECRET_KEY=' + secrets.token_urlsafe(50))" > .env
	@echo "wrote .env with a new SECRET_KEY"

staticfiles/staticfiles.json: $(VENV)/.installed
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0

migrate: install .env
	@if [ -z "$$($(ENV_VALUE) DATABASE_URL)" ]; then \
	  echo "Database: no DATABASE_URL, so an embedded PostgreSQL in .data/postgres (started on" \
	       "demand, kept between runs; \`make db-stop\` stops it, deleting .data/postgres resets it)"; \
	fi
	$(BIN)/python manage.py migrate --noinput

bootstrap: migrate staticfiles/staticfiles.json
	$(BIN)/python manage.py ensure_admin
	$(BIN)/python manage.py import_catalog data/sample/products.csv --if-empty --no-progress
	@echo ""
	@echo "  API      http://127.0.0.1:$(SERVE_PORT)/api/v1/"
	@echo "  Docs     http://127.0.0.1:$(SERVE_PORT)/api/docs/  (ReDoc: /api/redoc/, schema: /api/schema/)"
	@echo "  Admin    http://127.0.0.1:$(SERVE_PORT)/admin/"
	@echo "  Health   http://127.0.0.1:$(SERVE_PORT)/healthz  /readyz  /metrics"
	@echo ""

# With a broker (REDIS_URL or CELERY_BROKER_URL) tasks are queued, so a Celery worker and beat
# start beside gunicorn and stop with it (Ctrl-C); without one, tasks run inside the web process.
run: bootstrap
	@if [ -n "$$($(ENV_VALUE) CELERY_BROKER_URL)$$($(ENV_VALUE) REDIS_URL)" ]; then \
	  echo "Broker set (REDIS_URL): starting a Celery worker and beat beside the web server;" \
	       "Ctrl-C stops all three."; \
	  mkdir -p .data; \
	  $(BIN)/celery -A config worker -Q critical,default,bulk --loglevel=INFO & worker=$$!; \
	  $(BIN)/celery -A config beat --schedule .data/celerybeat-schedule --loglevel=INFO & beat=$$!; \
	  trap 'kill $$worker $$beat 2>/dev/null; wait $$worker $$beat 2>/dev/null' EXIT; \
	  trap 'exit 130' INT; trap 'exit 143' TERM; \
	  PORT=$(SERVE_PORT) $(BIN)/gunicorn -c config/gunicorn.conf.py config.wsgi; \
	else \
	  echo "No REDIS_URL: queued work (emails, payment events) runs inside the web process;" \
	       "scheduled work (expiring unpaid orders, reconciliation) needs REDIS_URL and runs then."; \
	  PORT=$(SERVE_PORT) exec $(BIN)/gunicorn -c config/gunicorn.conf.py config.wsgi; \
	fi

dev: bootstrap
	DEBUG=true $(BIN)/python manage.py runserver 127.0.0.1:$(SERVE_PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy .

pytest: install
	$(BIN)/pytest --cov --cov-report=term $(PYTEST_ARGS)

test: lint typecheck pytest

# One worker for every queue locally; docker-compose.yml splits them by urgency.
worker: install .env
	$(BIN)/celery -A config worker -Q critical,default,bulk --loglevel=INFO

beat: install .env
	$(BIN)/celery -A config beat --loglevel=INFO

bench: install .env
	$(BIN)/python -m bench $(BENCH)

# The schema fuzz test of `make test`, with many more examples per operation (FUZZ_EXAMPLES).
fuzz: install
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-200} $(BIN)/pytest -p no:cacheprovider tests/test_schema_fuzz.py $(PYTEST_ARGS)

# Locust, headless, for a fixed time against gunicorn + Celery + Redis over a 100,000-product
# catalog in a scratch database (bench/load.py says what it measures and checks).
load: install .env
	$(BIN)/python -m bench.load

db-stop:
	-$(BIN)/python -c "import pgserver; pgserver.get_server('.data/postgres', cleanup_mode='stop').cleanup()"

clean:
	rm -rf $(VENV) staticfiles .mypy_cache .pytest_cache .ruff_cache .coverage
