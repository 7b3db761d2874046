"""The house rules of docs/architecture.md, read from the code itself: where local and AWS
are decided, where the table's keys are spelled, which way imports run (function-level
imports included), and how large a module may grow."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("photos", "mediaapp", "infra", "benchmarks")
SKIP_DIRS = {"migrations", "node_modules", "cdk.out", "__pycache__"}

# Lower layers never import higher ones (docs/architecture.md): views / admin / api ->
# services -> pipelines -> apply / renditions / labeler / analysis -> selectors -> models.
LAYERS = [
    (1, ("photos.models", "photos.pipeline_models", "photos.text_models", "photos.querysets", "photos.roles", "photos.analysis", "photos.video", "infra.functions", "infra.resources")),
    (2, ("photos.selectors", "photos.validation")),
    (3, ("photos.apply", "photos.renditions", "photos.exports")),
    (4, ("photos.pipelines",)),
    (5, ("photos.services",)),
    (6, ("photos", "mediaapp")),  # views, api, admin, forms, tasks, urls, commands, the project
    (7, ("benchmarks", "infra")),  # tools around the product: benchmarks, the CDK app, the offline AWS runner
]
# Imports inside functions, of the project's own modules, and why each cannot be at the
# top of its module. Nothing else may import inside a function.
LATE_IMPORTS = {
    ("mediaapp.celery", "photos.pipelines"): "mediaapp/__init__ loads the Celery app while settings load, before apps are ready",
    ("photos.pipelines", "photos.pipelines.aws"): "the implementations import the models; the Celery config imports the package first",
    ("photos.pipelines", "photos.pipelines.local"): "the implementations import the models; the Celery config imports the package first",
    ("photos.apps", "photos.selectors.labels"): "AppConfig.ready(): models can be imported only once apps are loaded",
    ("photos.pipelines.local", "photos.analysis"): "loads onnxruntime, which only the worker needs, not the web app",
    ("infra.functions.labeler.events", "aws_lambda_powertools"): "the web app imports events for its messages and has no Powertools",
    ("photos.analysis.models", "photos.analysis.build.efficientnet"): "the model converters run once at build time, not per process",
    ("photos.analysis.models", "photos.analysis.build.torch_weights"): "the model converters run once at build time, not per process",
    ("photos.analysis.models", "photos.analysis.build.tfjs"): "the model converters run once at build time, not per process",
    ("infra.local_aws", "photos.analysis"): "the runner sets the emulated AWS environment before the detector loads",
    ("infra.local_aws", "infra.functions.labeler.handler"): "the handler reads its environment at import: set by the runner first",
    ("infra.local_aws", "photos.management.commands.serve"): "needs DJANGO_SETTINGS_MODULE, which the runner sets first",
    ("infra.local_aws", "infra.functions.labeler.video"): "the handlers read their environment, which the runner sets first",
    ("infra.local_aws", "infra.local_video"): "it loads the detector, after the runner sets the emulated AWS environment",
    ("infra.local_video", "photos.pipelines.frames"): "needs Django's settings and the detector: loaded at the first job",
    ("benchmarks.detector", "photos.analysis"): "an engine's import is part of the load time it measures, in its own process",
    ("benchmarks.detector", "infra.functions.labeler"): "an engine's import is part of the load time it measures, in its own process",
}
# Modules allowed past MAX_LINES: generated or emulating a large external API.
MAX_LINES = 450
LONG_MODULES = {"photos/analysis/client.py": "the Rekognition emulator (three APIs and their validation)"}


def python_files(*tops: str):
    for top in tops:
        for path in sorted((ROOT / top).rglob("*.py")):
            if not SKIP_DIRS & set(path.relative_to(ROOT).parts):
                yield path


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in python_files(*PACKAGES)}


def imports(name: str) -> list[tuple[str, bool, int]]:
    """(project module imported, inside a function?, line) for every import of ``name``."""
    path = modules()[name]
    tree = ast.parse(path.read_text(), filename=str(path))
    late = {id(sub) for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            for sub in ast.walk(node) if isinstance(sub, (ast.Import, ast.ImportFrom))}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] or [base]
            targets = [t if _known(t) else base for t in targets]
        else:
            continue
        for target in dict.fromkeys(targets):
            while target and not _known(target) and "." in target:
                target = target.rpartition(".")[0]
            if _known(target) and target != name:
                found.append((target, id(node) in late, node.lineno))
            elif target.startswith("aws_lambda_powertools") and id(node) in late:
                found.append(("aws_lambda_powertools", True, node.lineno))
    return found


def _known(target: str) -> bool:
    return target in modules()


def layer(name: str) -> int:
    best = (0, 0)
    for rank, prefixes in LAYERS:
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best[1]:
                best = (rank, len(prefix))
    return best[0]


def graph() -> dict[str, set[str]]:
    return {name: {target for target, _, _ in imports(name) if target in modules()} for name in modules()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_even_through_function_level_imports():
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_imports_run_down_the_layers():
    upward = [(name, target, line) for name in modules() for target, _, line in imports(name)
              if target in modules() and layer(target) > layer(name)]

    assert upward == []


def test_imports_inside_functions_are_only_the_justified_ones():
    late = {(name, target) for name in modules() for target, inside, _ in imports(name) if inside}

    assert late == set(LATE_IMPORTS)


def test_every_module_is_layered():
    assert [name for name in modules() if layer(name) == 0] == []


@pytest.mark.parametrize(("setting", "allowed"), [
    ("PHOTOS_PIPELINE", ("mediaapp/settings.py", "photos/pipelines/")),
    ("PHOTOS_STORAGE", ("mediaapp/settings.py", "photos/pipelines/")),
])
def test_local_or_aws_is_decided_in_one_place(setting, allowed):
    readers = set()
    for path in python_files("photos", "mediaapp"):
        tree = ast.parse(path.read_text(), filename=str(path))
        if any((isinstance(node, ast.Attribute) and node.attr == setting)
               or (isinstance(node, ast.Constant) and node.value == setting) for node in ast.walk(tree)):
            readers.add(str(path.relative_to(ROOT)))

    assert readers and all(reader.startswith(allowed) for reader in readers), sorted(readers)


@pytest.mark.parametrize("spelling", ["IMG#", "SYNC#"])
def test_the_table_keys_are_spelled_in_one_module(spelling):
    spelled = sorted(str(p.relative_to(ROOT)) for p in python_files(*PACKAGES) if spelling in p.read_text())

    assert spelled == ["infra/functions/labeler/table.py"]


def test_no_module_outgrows_its_concern():
    long = {str(p.relative_to(ROOT)): n for p in python_files(*PACKAGES)
            if (n := len(p.read_text().splitlines())) > MAX_LINES}

    assert set(long) <= set(LONG_MODULES), long


def test_tests_are_named_for_behaviour_not_for_issues():
    named = [str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py")
             if "issue" in p.stem or "polish" in p.stem or "finding" in p.stem]

    assert named == []
