"""`config/settings.py` has one owner per rule: each name is assigned once, at its definition, and
no settings dictionary is patched later in the file (cookiecutter-django's discipline). A value
derived from another setting is written into the definition, so reading one assignment tells
the whole story."""

import ast
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

SETTINGS_FILE = Path(settings.BASE_DIR) / "config" / "settings.py"


def module_level_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The module's own statements, including those inside `if`/`try`/`with`/`for` blocks (they
    still run at import), but not the bodies of functions and classes."""
    for node in body:
        yield node
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for field in ("body", "orelse", "finalbody"):
            yield from module_level_statements(getattr(node, field, []))
        for handler in getattr(node, "handlers", []):
            yield from module_level_statements(handler.body)


def assignment_targets(node: ast.stmt) -> list[ast.expr]:
    if isinstance(node, ast.Assign):
        return list(node.targets)
    if isinstance(node, ast.AnnAssign | ast.AugAssign):
        return [node.target]
    if isinstance(node, ast.For | ast.AsyncFor):
        return [node.target]
    return []


def flatten(target: ast.expr) -> Iterator[ast.expr]:
    if isinstance(target, ast.Tuple | ast.List):
        for element in target.elts:
            yield from flatten(element)
    elif isinstance(target, ast.Starred):
        yield from flatten(target.value)
    else:
        yield target


def settings_targets(source: str) -> list[tuple[ast.expr, int]]:
    tree = ast.parse(source)
    return [
        (target, node.lineno)
        for node in module_level_statements(tree.body)
        for top in assignment_targets(node)
        for target in flatten(top)
    ]


def problems(source: str) -> list[str]:
    found = []
    names: Counter[str] = Counter()
    for target, line in settings_targets(source):
        if isinstance(target, ast.Name):
            names[target.id] += 1
            if names[target.id] == 2:
                found.append(f"line {line}: {target.id} is assigned a second time")
        else:
            # DATABASES["replica"] = …, LOGGING["loggers"]["x"] = …, CONFIG.attr = …
            found.append(f"line {line}: {ast.unparse(target)} patches a value after its definition")
    return found


def test_each_setting_is_assigned_once_and_never_patched():
    assert problems(SETTINGS_FILE.read_text()) == []


def test_the_check_sees_each_kind_of_patch():
    source = """
A = {}
A["x"] = 1
B = 1
if B:
    B = 2
C = {}
C["x"]["y"] = 2
for _entry in [C]:
    _entry.z = 3
D: int = 1
D += 1
def helper():
    E = {}
    E["fine"] = "a function's own dictionary is its business"
    return E
"""
    found = problems(source)
    assert len(found) == 5, found
    assert any("A['x']" in problem for problem in found)
    assert any("B is assigned a second time" in problem for problem in found)
    assert any("C['x']['y']" in problem for problem in found)
    assert any("_entry" in problem for problem in found)
    assert any("D is assigned a second time" in problem for problem in found)


def test_no_dead_gunicorn_or_transaction_settings():
    """PORT and WEB_CONCURRENCY are gunicorn's (config/gunicorn.conf.py); ATOMIC_REQUESTS is
    per database in Django and False by default."""
    names = {
        target.id
        for target, _ in settings_targets(SETTINGS_FILE.read_text())
        if isinstance(target, ast.Name)
    }
    assert not names & {"PORT", "WEB_CONCURRENCY", "ATOMIC_REQUESTS"}
