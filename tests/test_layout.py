"""The dependency direction of docs/architecture.md, read from the source: who imports whom."""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "digitrec"


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Each digitrec module and the digitrec modules it imports (relative imports resolved)."""
    graph = {}
    for path in SRC.rglob("*.py"):
        name = _module(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                found |= {base} | {f"{base}.{a.name}" for a in node.names}
        graph[name] = {m for m in found if m.startswith("digitrec")}
    modules = set(graph)
    return {k: {m for m in v if m in modules and m != k} for k, v in graph.items()}


def _folder(module: str) -> str:
    return module.split(".")[1] if module.count(".") >= 1 else ""


def test_inference_and_imaging_never_import_training_evaluation_report_or_apps():
    for module, deps in _imports().items():
        if _folder(module) in ("inference", "imaging", "models", "data"):
            bad = {d for d in deps if _folder(d) in ("training", "evaluation", "report", "apps")}
            assert not bad, f"{module} imports {bad}"


def test_nothing_outside_apps_imports_apps():
    for module, deps in _imports().items():
        if _folder(module) != "apps":
            assert not {d for d in deps if _folder(d) == "apps"}, module


def test_there_is_no_import_cycle():
    graph = _imports()
    # a package's __init__ may re-export its modules lazily; the cycle that matters is between files
    graph = {k: {d for d in v if not k.startswith(d + ".")} for k, v in graph.items()}
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in graph.get(m, ()):
            assert state.get(d) != 1, " -> ".join(path + [m, d])
            if d not in state:
                visit(d, path + [m])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [])
