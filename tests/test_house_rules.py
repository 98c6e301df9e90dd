"""House rules for the source tree, checked by reading the files (no imports, no Spark).

- No import cycles among the modules of src/custseg. Every ``import`` and ``from ... import``
  counts, relative ones and those inside functions included; imports under
  ``if TYPE_CHECKING:`` are left out, since they never run.
- Every .py file under src/custseg has at most 500 lines.
- No ``fmt: skip`` comments in src, tests or benchmarks: ``ruff format`` owns the layout.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "custseg"
MAX_LINES = 500
FMT_SKIP = re.compile(r"#\s*fmt:\s*skip\b")

# -- reading the import graph ------------------------------------------------------------


def module_names(package: Path) -> dict[str, Path]:
    """{dotted module name: file} for every .py file in ``package`` (a package's __init__
    is the package's own name)."""
    names = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST):
    """Every Import and ImportFrom in ``tree``, at any depth, except under TYPE_CHECKING."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that module ``name`` (read from ``path``) imports.

    ``from pkg import x`` points at ``pkg.x`` when that is a module, else at ``pkg``.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names]
            targets = [t if t in known else base for t in targets]
        for target in targets:
            # `import custseg.a.b` names custseg.a.b; keep the longest known prefix
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    modules = module_names(package)
    known = set(modules)
    return {name: imported_modules(name, path, known) for name, path in modules.items()}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
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
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


# -- the checker itself can fail ---------------------------------------------------------


def test_the_cycle_finder_sees_relative_and_function_level_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..c import g\n")
    (pkg / "c.py").write_text("import pkg.a\n\ndef g():\n    pass\n")
    (pkg / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import e\n"
    )
    (pkg / "e.py").write_text("from pkg.d import x\n")
    graph = import_graph(pkg)
    assert graph["pkg.a"] == {"pkg.sub.b"}
    assert graph["pkg.sub.b"] == {"pkg.c"}
    assert graph["pkg.d"] == set()  # the TYPE_CHECKING import is left out
    assert import_cycles(graph) == [["pkg.a", "pkg.c", "pkg.sub.b"]]


# -- the rules ---------------------------------------------------------------------------


def test_no_import_cycles_in_the_package():
    cycles = import_cycles(import_graph(PACKAGE))
    assert not cycles, "import cycles (each line one group of modules importing each other):\n" + (
        "\n".join(" <-> ".join(cycle) for cycle in cycles)
    )


def test_every_source_file_has_at_most_500_lines():
    long = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            long[path.relative_to(ROOT).as_posix()] = lines
    assert not long, f"source files over {MAX_LINES} lines:\n" + "\n".join(
        f"{name}: {lines}" for name, lines in long.items()
    )


def test_no_fmt_skip_comments():
    found = []
    for folder in ("src", "tests", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if FMT_SKIP.search(line):
                    found.append(f"{path.relative_to(ROOT).as_posix()}:{number}")
    assert not found, f"{len(found)} fmt: skip comments left:\n" + "\n".join(found)
