"""docker-compose.yml, the Dockerfile, the requirements files and `make worker`.

No Docker engine runs in the tests, so the files are parsed and held against the settings: what
a deployment relies on (every variable reaches the app, one migration run, a broker that never
evicts, a worker for every queue, a read-only image) fails here before it fails in production.
"""

from __future__ import annotations

import ast
import fnmatch
import os
import re
import shlex
import subprocess
import sys
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from celery.exceptions import AlwaysEagerIgnored
from django.conf import settings
from kombu import Connection
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from common.tests.test_deploy import settings_variables

ROOT = Path(settings.BASE_DIR)
# The services that run the app image, and those of them that must wait for the migrations.
APP_SERVICES = ("migrate", "web", "worker-critical", "worker", "beat", "flower")
WAIT_FOR_MIGRATIONS = ("web", "worker-critical", "worker", "beat")
WORKERS = ("worker-critical", "worker")
# The wiring compose owns: these win over `.env`, whose values may name a developer's 127.0.0.1.
COMPOSE_FIXED = {
    "DEBUG": "false",
    "REDIS_URL": "redis://redis:6379/0",
    "CELERY_BROKER_URL": "redis://redis:6379/0",
    "CACHE_URL": "redis://redis-cache:6379/0",
    "THROTTLE_CACHE_URL": "redis://redis-cache:6379/1",
}
PRODUCTION_PACKAGES = ("config", "common", "accounts", "inventory", "orders", "payments")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return cast(dict[str, Any], yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return cast(dict[str, Any], compose["services"])


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def option(command: list[str], *names: str) -> str | None:
    """The value after `-Q`/`--queues` (or `--queues=…`) in a command line."""
    for index, part in enumerate(command):
        if part in names and index + 1 < len(command):
            return command[index + 1]
        for name in names:
            if name.startswith("--") and part.startswith(f"{name}="):
                return part.split("=", 1)[1]
    return None


def healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else test


def env_files(service: dict[str, Any]) -> list[str]:
    value = service.get("env_file", [])
    entries = [value] if isinstance(value, str | dict) else value
    return [str(Path(e["path"] if isinstance(e, dict) else e)) for e in entries]


def worker_queues(services: dict[str, Any]) -> dict[str, set[str]]:
    queues = {}
    for name in WORKERS:
        value = option(command_of(services[name]), "-Q", "--queues")
        assert value, f"{name} does not name its queues"
        queues[name] = set(value.split(","))
    return queues


def routed_queue(task: str) -> str:
    for pattern, route in settings.CELERY_TASK_ROUTES.items():
        if fnmatch.fnmatchcase(task, pattern):
            return str(route["queue"])
    return str(settings.CELERY_TASK_DEFAULT_QUEUE)


# --- environment ---------------------------------------------------------------------------


def test_every_variable_in_dot_env_reaches_the_app_containers(services):
    known = settings_variables() | {"HOST", "PORT", "WEB_CONCURRENCY", "FLOWER_BASIC_AUTH"}
    for name in APP_SERVICES:
        service = services[name]
        assert ".env" in env_files(service), f"{name} does not read .env (env_file)"
        environment = service["environment"]
        assert isinstance(environment, dict)
        unknown = set(environment) - known
        assert not unknown, f"{name} sets variables nothing reads: {unknown}"
        for variable, value in environment.items():
            value = str(value)
            # `FOO: ${FOO:-}` would hand the app an empty string instead of the .env value.
            assert not re.search(r"\$\{\w+:?-\}", value), f"{name}: {variable}={value}"
            if variable in COMPOSE_FIXED:
                assert value == COMPOSE_FIXED[variable], f"{name}: {variable}={value}"
            elif variable == "DATABASE_URL":
                assert value == "postgres://shop:${POSTGRES_PASSWORD:-shop}@postgres:5432/shop"
            elif variable == "PORT":
                assert value == "8000", "the container port is fixed; PORT picks the host port"
            else:
                # Anything else is the .env value itself (interpolated), never a fixed override.
                assert value.startswith(f"${{{variable}"), f"{name} overrides {variable}: {value}"
        assert environment["SECRET_KEY"].startswith("${SECRET_KEY:?"), "SECRET_KEY is required"
        for variable in COMPOSE_FIXED:
            assert variable in environment, f"{name} lacks {variable}"


def test_dot_env_stays_out_of_the_image():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored
    assert "media" in ignored


# --- migrations ----------------------------------------------------------------------------


def test_migrations_run_once_in_a_one_shot_service_the_app_waits_for(services):
    migrate = services["migrate"]
    assert command_of(migrate)[:3] == ["python", "manage.py", "migrate"]
    assert migrate["restart"] == "no", "a one-shot service must not be restarted"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in WAIT_FOR_MIGRATIONS:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        for backing in ("postgres", "redis", "redis-cache"):
            assert depends[backing]["condition"] == "service_healthy", f"{name} → {backing}"
    for name, service in services.items():
        if name != "migrate":
            assert "migrate" not in command_of(service), f"{name} migrates too"
            assert "migrate" not in " ".join(command_of(service)), f"{name} migrates too"


# --- Redis ---------------------------------------------------------------------------------


def redis_config(service: dict[str, Any]) -> dict[str, str]:
    command = command_of(service)
    assert command[0] == "redis-server"
    pairs = iter(command[1:])
    return {flag.removeprefix("--"): value for flag, value in zip(pairs, pairs, strict=True)}


def test_the_broker_never_evicts_and_persists_its_queues(services):
    broker = services["redis"]
    assert broker["image"].startswith("redis:7")
    config = redis_config(broker)
    assert config["maxmemory-policy"] == "noeviction"
    assert config["appendonly"] == "yes"
    assert any(str(volume).endswith(":/data") for volume in broker["volumes"])
    assert "healthcheck" in broker


def test_the_cache_is_bounded_evicts_lru_and_writes_nothing_to_disk(services):
    cache = services["redis-cache"]
    assert cache["image"].startswith("redis:7")
    config = redis_config(cache)
    assert config["maxmemory"] == "256mb"
    assert config["maxmemory-policy"] == "allkeys-lru"
    assert config["save"] == ""
    assert config["appendonly"] == "no"
    assert not cache.get("volumes")
    assert "healthcheck" in cache


# --- workers -------------------------------------------------------------------------------


def test_workers_split_by_urgency_and_consume_every_queue(services):
    queues = worker_queues(services)
    assert queues["worker-critical"] == {"critical"}
    assert queues["worker"] == {"default", "bulk"}
    declared = {queue.name for queue in settings.CELERY_TASK_QUEUES}
    consumed = set().union(*queues.values())
    assert consumed == declared, "a queue nobody consumes fills up forever"
    routed = {str(route["queue"]) for route in settings.CELERY_TASK_ROUTES.values()}
    assert routed | {settings.CELERY_TASK_DEFAULT_QUEUE} <= consumed


def test_each_worker_healthcheck_pings_that_worker(services):
    for name in WORKERS:
        service = services[name]
        command = command_of(service)
        assert command[:4] == ["celery", "-A", "config", "worker"], name
        node = option(command, "-n", "--hostname")
        assert node, f"{name} needs a node name to ping"
        assert node.endswith("@%h"), node
        check = healthcheck_text(service)
        assert "inspect ping" in check
        assert f"-d {node.removesuffix('%h')}$$HOSTNAME" in check, check


def test_beat_runs_once_and_is_healthchecked_by_its_schedule_file(services):
    beats = [name for name, service in services.items() if "beat" in command_of(service)]
    assert beats == ["beat"], "two beats would send every job twice"
    command = command_of(services["beat"])
    schedule = option(command, "--schedule", "-s")
    assert schedule, "beat needs a schedule file it may write"
    assert schedule.startswith("/tmp/"), "the app user can write only /tmp"  # noqa: S108
    assert schedule in healthcheck_text(services["beat"])


def test_make_worker_consumes_every_queue():
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^worker:.*\n\t(.+)$", makefile, re.MULTILINE)
    assert recipe, "no worker target"
    queues = option(shlex.split(recipe.group(1)), "-Q", "--queues")
    assert queues
    assert set(queues.split(",")) == {queue.name for queue in settings.CELERY_TASK_QUEUES}


def test_each_task_reaches_only_the_queue_its_route_names():
    """With separate workers per queue, a message copied into two queues runs twice."""
    from celery import current_app as app  # the project's (config/celery.py), above common

    app.loader.import_default_modules()
    tasks = sorted(name for name in app.tasks if not name.startswith("celery."))
    assert "orders.tasks.expire_unpaid_orders" in tasks
    names = [queue.name for queue in settings.CELERY_TASK_QUEUES]
    with Connection("memory://") as connection:
        channel: Any = connection.default_channel
        for queue in app.amqp.queues.values():  # bound as the workers bind them
            queue.bind(channel).declare()
        for task in tasks:
            for name in names:
                channel.queue_purge(name)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AlwaysEagerIgnored)
                app.send_task(task, connection=connection)
            received = {name: channel.queue_purge(name) or 0 for name in names}
            expected = routed_queue(task)
            assert received == {name: int(name == expected) for name in names}, task


# --- web and flower ------------------------------------------------------------------------


def test_web_serves_gunicorn_on_8000_and_is_healthchecked_by_readyz(services):
    web = services["web"]
    command = " ".join(command_of(web))
    assert "gunicorn" in command
    assert "config.wsgi" in command
    assert [str(port).rsplit(":", 1)[1] for port in web["ports"]] == ["8000"]
    assert web["environment"]["PORT"] == "8000"
    assert "http://127.0.0.1:8000/readyz" in healthcheck_text(web)


def test_flower_requires_basic_auth_and_listens_on_loopback_only(services):
    flower = services["flower"]
    assert command_of(flower)[:4] == ["celery", "-A", "config", "flower"]
    environment = flower["environment"]
    assert environment["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")
    for worker in WORKERS:
        worker_broker = services[worker]["environment"]["CELERY_BROKER_URL"]
        assert environment["CELERY_BROKER_URL"] == worker_broker
    assert flower["ports"] == ["127.0.0.1:5555:5555"]
    assert "/healthcheck" in healthcheck_text(flower)
    assert re.search(r"^flower==\S+$", (ROOT / "requirements.txt").read_text(), re.MULTILINE)


def test_uploaded_files_live_on_a_volume_shared_by_web_and_workers(compose, services):
    assert "media" in compose["volumes"]
    for name in ("web", *WORKERS):
        assert "media:/app/media" in services[name].get("volumes", []), name


# --- Dockerfile ----------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str, list[str]]]:
    """(instruction, arguments, comments just above it), continuation lines joined."""
    instructions: list[tuple[str, str, list[str]]] = []
    comments: list[str] = []
    pending = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not pending and stripped.startswith("#"):
            comments.append(stripped)
            continue
        if not stripped:
            if not pending:
                comments = []
            continue
        pending += " " + stripped.removesuffix("\\").strip()
        if not stripped.endswith("\\"):
            keyword, _, arguments = pending.strip().partition(" ")
            instructions.append((keyword.upper(), arguments.strip(), comments))
            pending, comments = "", []
    return instructions


def test_image_binds_every_interface_and_says_why():
    envs = [(args, notes) for keyword, args, notes in dockerfile_instructions() if keyword == "ENV"]
    host = [
        (args, notes) for args, notes in envs if re.search(r"(^|\s)HOST=0\.0\.0\.0(\s|$)", args)
    ]
    assert host, "the image must set HOST=0.0.0.0"
    assert any("127.0.0.1" in note or "interface" in note for note in host[0][1])


def test_gunicorn_binds_loopback_unless_host_is_set(monkeypatch):
    # The settings as a checkout with an empty .env sees them (whatever this checkout's says).
    from tests.test_workers import gunicorn_settings

    assert gunicorn_settings(monkeypatch, HOST=None, PORT=None)["bind"] == "127.0.0.1:8000"
    everywhere = "0.0.0.0"  # noqa: S104
    assert gunicorn_settings(monkeypatch, HOST=everywhere, PORT=None)["bind"] == "0.0.0.0:8000"


def test_image_code_is_read_only_for_a_non_root_user():
    instructions = dockerfile_instructions()
    users = [args for keyword, args, _ in instructions if keyword == "USER"]
    assert users, "the image runs as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    runs = " ".join(args for keyword, args, _ in instructions if keyword == "RUN")
    assert not re.search(r"chown\s+(-\w*R|--recursive)", runs), "the code must stay root's"
    chowned = re.findall(r"chown\s+(?:-\S+\s+)*\S+\s+(\S+)", runs)
    assert chowned == ["/app/media"], f"the app user may write only /app/media: {chowned}"
    assert "--uid 10001" in runs
    copies = [args for keyword, args, _ in instructions if keyword in {"COPY", "ADD"}]
    assert not any("--chown" in args for args in copies), "copied files must stay root's"
    assert "collectstatic" in runs, "static files are collected at build time"


def test_image_installs_runtime_requirements_only():
    runs = [args for keyword, args, _ in dockerfile_instructions() if keyword == "RUN"]
    installs = [args for args in runs if "pip install" in args]
    assert installs == ["pip install -r requirements.txt"]


# --- requirements --------------------------------------------------------------------------


def pinned(path: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line or line.startswith(("#", "-r ")):
            continue
        name, separator, version = line.partition("==")
        assert separator, f"{path.name}: not pinned exactly: {line}"
        assert version, f"{path.name}: not pinned exactly: {line}"
        pins[canonicalize_name(name)] = version
    return pins


def test_pgserver_is_a_development_dependency_only():
    runtime = pinned(ROOT / "requirements.txt")
    development = (ROOT / "requirements-dev.txt").read_text()
    assert "pgserver" not in runtime
    assert "-r requirements.txt" in development.splitlines()
    assert "pgserver" in pinned(ROOT / "requirements-dev.txt")


def test_runtime_requirements_pin_their_whole_dependency_tree():
    runtime = pinned(ROOT / "requirements.txt")
    environment = {**cast(dict[str, str], default_environment()), "extra": ""}
    missing = set()
    for name in runtime:
        for spec in metadata.requires(name) or []:
            requirement = Requirement(spec)
            if requirement.marker and not requirement.marker.evaluate(environment):
                continue
            if canonicalize_name(requirement.name) not in runtime:
                missing.add(f"{requirement.name} (for {name})")
    assert not missing, f"not pinned in requirements.txt: {sorted(missing)}"


def imported_modules(tree: ast.AST, *, module_level_only: bool) -> set[str]:
    """Top-level names of the modules a file imports; with `module_level_only`, only the imports
    that run when the module is imported (function bodies run later, if ever)."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if module_level_only and isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
            ):
                continue
            if isinstance(child, ast.Import):
                names.update(alias.name.split(".")[0] for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                names.add(child.module.split(".")[0])
            visit(child)

    visit(tree)
    return names


def test_production_code_imports_pgserver_only_lazily_in_the_embedded_backend():
    for package in PRODUCTION_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT)
            if "tests" in relative.parts or "migrations" in relative.parts:
                continue
            tree = ast.parse(path.read_text())
            embedded = relative.parts[:2] == ("common", "embedded_postgres")
            imports = imported_modules(tree, module_level_only=embedded)
            assert "pgserver" not in imports, f"{relative} imports pgserver"


def test_the_app_starts_without_pgserver_installed():
    """What the image runs: settings, URLs, the WSGI app and every task module, with `import
    pgserver` failing as it does where only requirements.txt is installed."""
    probe = (
        "import sys; sys.modules['pgserver'] = None\n"
        "import django; django.setup()\n"
        "import config.urls, config.wsgi\n"
        "from config.celery import app; app.loader.import_default_modules()\n"
        "print('ok')\n"
    )
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": "only-for-the-import-check",
        "DATABASE_URL": "postgres://unused@127.0.0.1:5432/unused",
    }
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")
