"""The layout of docs/architecture.md, read from the source: who imports whom, and modules and functions of a
size a reader can hold."""
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
    """The folder of a module under ``digitrec`` ('' for a module at the top: errors, checkpoint, deadline)."""
    parts = module.split(".")
    return parts[1] if len(parts) >= 2 and ((SRC / parts[1]).is_dir() or parts[1] == "export") else ""


# each folder's place in the dependency direction, top to bottom: a module imports its own rank or above only
RANK = {"": 0, "data": 1, "imaging": 1, "models": 1, "inference": 2, "training": 2, "evaluation": 2, "export": 2,
        "forms": 3, "batch": 4, "report": 5, "apps": 5}


def _rank(module: str) -> int:
    return RANK[_folder(module)] if _folder(module) in RANK else RANK[""]


def test_no_module_imports_one_below_it_in_the_dependency_direction():
    for module, deps in _imports().items():
        if module == "digitrec":  # the public API's lazy re-exports
            continue
        bad = {d for d in deps if _rank(d) > _rank(module)}
        assert not bad, f"{module} imports {bad}, which come later in the dependency direction"


def test_inference_never_imports_training_evaluation_forms_or_batch():
    for module, deps in _imports().items():
        if _folder(module) == "inference":
            bad = {d for d in deps if _folder(d) in ("training", "evaluation", "export", "forms", "batch")}
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


def _own_lines(fn) -> int:
    """A function's lines less those of the functions defined in it (each measured on its own)."""
    nested = [n for n in fn.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return fn.end_lineno - fn.lineno + 1 - sum(n.end_lineno - n.lineno + 1 for n in nested)


def test_no_module_is_over_400_lines_and_no_function_over_60():
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        assert text.count("\n") <= 400, f"{path.relative_to(SRC)}: {text.count(chr(10))} lines, two concerns"
        for node in ast.walk(ast.parse(text)):
            # an argparse builder is a list of flags, one call each: long, and read as a table
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name != "build_parser":
                assert _own_lines(node) <= 60, f"{path.relative_to(SRC)}: {node.name} is {_own_lines(node)} lines"
