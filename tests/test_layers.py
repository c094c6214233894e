"""The layering of docs/ARCHITECTURE.md, checked from the source (AST, nothing imported):

- ``cpu_fallback`` imports nothing from ``gpu_hedge`` (usable on its own);
- only the backend layer (``gpu_hedge/_backends``) imports CuPy, JAX or ``cpu_fallback``;
- no code outside the backend layer asks which backend it is on (compares or requests a backend by name);
- no import circles between modules (lazy imports inside functions included);
- modules by concept: none over ``MAX_LINES`` lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gpu_hedge", "cpu_fallback")
NAMES = {"numpy", "cupy", "jax"}
MAX_LINES = 420


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _imports(name: str, top_level_only: bool) -> list[tuple[str, int]]:
    """(imported module, line) for each import in module ``name``; ``from a import b`` counts as
    ``a.b`` when that is a module of ours, else as ``a``."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    base = name.split(".") if _is_package(name) else name.split(".")[:-1]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                mod = ".".join(base[: len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                sub = f"{mod}.{a.name}"
                found.append((sub if sub in MODULES else mod, node.lineno))
    return found


def _where(name: str, line: int) -> str:
    return f"{MODULES[name].relative_to(ROOT)}:{line}"


def test_cpu_fallback_imports_nothing_from_gpu_hedge() -> None:
    bad = [
        f"{_where(m, line)} imports {imp}"
        for m in MODULES
        if m.startswith("cpu_fallback")
        for imp, line in _imports(m, top_level_only=False)
        if imp.split(".")[0] == "gpu_hedge"
    ]
    assert not bad, "cpu_fallback must stand on its own:\n" + "\n".join(sorted(set(bad)))


def test_only_the_backend_layer_imports_backends() -> None:
    allowed = ("gpu_hedge._backends", "gpu_hedge._layout")  # _layout checks cpu_fallback is a real package
    bad = [
        f"{_where(m, line)} imports {imp}"
        for m in MODULES
        if m.startswith("gpu_hedge") and not m.startswith(allowed)
        for imp, line in _imports(m, top_level_only=False)
        if imp.split(".")[0] in ("cupy", "cupyx", "jax", "jaxlib", "cpu_fallback")
    ]
    assert not bad, "only gpu_hedge/_backends may import a backend:\n" + "\n".join(sorted(set(bad)))


def _is_name_literal(node: ast.AST) -> bool:
    """A backend's name as a literal, or a tuple / list / set literal holding one."""
    if isinstance(node, ast.Constant):
        return node.value in NAMES
    return isinstance(node, ast.Tuple | ast.List | ast.Set) and any(_is_name_literal(e) for e in node.elts)


def _names_backend(node: ast.AST) -> bool:
    if isinstance(node, ast.Compare):
        return any(_is_name_literal(s) for s in [node.left, *node.comparators])
    if isinstance(node, ast.Call):
        fn = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        return fn == "get_backend" and any(isinstance(a, ast.Constant) and a.value in NAMES for a in node.args)
    return False


def test_domain_code_never_asks_which_backend_it_is_on() -> None:
    bad = []
    for m, path in MODULES.items():
        if not m.startswith("gpu_hedge") or m.startswith("gpu_hedge._backends"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        bad += [f"{_where(m, n.lineno)}: {ast.unparse(n)}" for n in ast.walk(tree) if _names_backend(n)]
    assert not bad, "ask the Backend for a capability (or host_backend()), not for its name:\n" + "\n".join(bad)


def _cycles() -> list[list[str]]:
    graph = {m: {i for i, _ in _imports(m, top_level_only=False) if i in MODULES and i != m} for m in MODULES}
    # a package's __init__ re-exporting its submodules is not a circle: drop edges into an ancestor package
    graph = {m: {i for i in deps if not (m.startswith(i + ".") and _is_package(i))} for m, deps in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_circles() -> None:
    assert _cycles() == []


def test_the_checks_see_real_imports() -> None:
    """The checks above read the imports they claim to: a known edge and a known relative import are found."""
    assert ("numpy", 9) in [(i, line) for i, line in _imports("cpu_fallback._backend", True)] or any(
        i == "numpy" for i, _ in _imports("cpu_fallback._backend", True)
    )
    assert any(i == "gpu_hedge._backends._base" for i, _ in _imports("gpu_hedge._backends", True))
    assert _names_backend(ast.parse('bk.name == "numpy"').body[0].value)
    assert _names_backend(ast.parse('get_backend("jax")').body[0].value)
    assert _names_backend(ast.parse('array_backend(x) in ("cupy", "jax")').body[0].value)
    assert not _names_backend(ast.parse("get_backend(name)").body[0].value)
    assert not _names_backend(ast.parse('kind in ("call", "put")').body[0].value)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_small(name: str) -> None:
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(ROOT)} has {lines} lines; split it by concept (at most {MAX_LINES})"
