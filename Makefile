# Two commands matter: `make run` and `make test` (see README.md). Both work on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT

.PHONY: install run dev test lint typecheck pytest worker beat bench migrate bootstrap db-stop clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when a requirements file changed.
$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
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
	$(BIN)/python manage.py migrate --noinput

bootstrap: migrate staticfiles/staticfiles.json
	$(BIN)/python manage.py ensure_admin
	$(BIN)/python manage.py import_catalog data/sample/products.csv --if-empty --no-progress
	@echo ""
	@echo "  API      http://127.0.0.1:$(PORT)/api/v1/"
	@echo "  Docs     http://127.0.0.1:$(PORT)/api/docs/  (ReDoc: /api/redoc/, schema: /api/schema/)"
	@echo "  Admin    http://127.0.0.1:$(PORT)/admin/"
	@echo "  Health   http://127.0.0.1:$(PORT)/healthz  /readyz  /metrics"
	@echo ""

run: bootstrap
	$(BIN)/gunicorn -c config/gunicorn.conf.py config.wsgi

dev: bootstrap
	DEBUG=true $(BIN)/python manage.py runserver 127.0.0.1:$(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

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

db-stop:
	-$(BIN)/python -c "import pgserver; pgserver.get_server('.data/postgres', cleanup_mode='stop').cleanup()"

clean:
	rm -rf $(VENV) staticfiles .mypy_cache .pytest_cache .ruff_cache .coverage
