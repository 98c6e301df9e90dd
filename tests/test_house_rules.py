"""House rules for the source tree, checked by reading the files (no imports, no Spark).

- No import cycles among the modules of src/custseg. Every ``import`` and ``from ... import``
  counts, relative ones and those inside functions included; imports under
  ``if TYPE_CHECKING:`` are left out, since they never run.
- Every .py file under src/custseg has at most 500 lines.
- No ``fmt: skip`` comments in src, tests or benchmarks: ``ruff format`` owns the layout.
- A function of src/custseg longer than 60 lines (``def`` to its last line, docstring included)
  carries a ``# whole: <reason>`` comment right above its ``def`` (or decorators) or as the first
  line of its body: why it reads best as one piece. Splitting it is the usual answer.
- An ``import`` inside a function of src/custseg carries a ``# lazy: <reason>`` comment on its
  own line or on the line directly above (one such comment line may head a block of imports):
  an optional dependency, or keeping pyspark, mlflow or a slow import out of a path that does
  without it. Everything else is imported at the top of the module.
- ``import custseg.cli`` (what ``custseg --help`` runs) loads neither pyspark, mlflow nor
  streamlit.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "custseg"
MAX_LINES = 500
FMT_SKIP = re.compile(r"#\s*fmt:\s*skip\b")
MAX_FUNCTION_LINES = 60
# A reason is a few words, not one: "# whole: long" does not pass.
WHOLE = re.compile(r"#\s*whole:\s*\S+(\s+\S+){2,}")
LAZY = re.compile(r"#\s*lazy:\s*\S+(\s+\S+){2,}")

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


# -- reading functions ------------------------------------------------------------------

Function = ast.FunctionDef | ast.AsyncFunctionDef


def _comment_block_above(lines: list[str], number: int) -> list[str]:
    """The comment-only lines directly above line ``number`` (1-based), nearest first."""
    found = []
    i = number - 2
    while i >= 0 and lines[i].strip().startswith("#"):
        found.append(lines[i])
        i -= 1
    return found


def long_functions_without_reason(source: str) -> list[tuple[int, str, int]]:
    """(line, name, length) of every function longer than MAX_FUNCTION_LINES with no
    ``# whole:`` comment above its ``def``/decorators or before its first statement."""
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, Function):
            continue
        length = node.end_lineno - node.lineno + 1
        if length <= MAX_FUNCTION_LINES:
            continue
        top = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        body = node.body[0].lineno
        candidates = [
            *_comment_block_above(lines, top),
            *_comment_block_above(lines, body),
            lines[body - 1],
        ]
        if not any(WHOLE.search(line) for line in candidates):
            found.append((node.lineno, node.name, length))
    return sorted(found)


def function_imports_without_reason(source: str) -> list[tuple[int, str]]:
    """(line, text) of every import inside a function with no ``# lazy:`` reason on its own
    line(s), nor in the comment lines directly above it or above the block of imports it ends."""
    lines = source.splitlines()
    imports: dict[int, ast.stmt] = {}  # last line -> node, for the imports inside functions
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, Function):
            for inner in _import_nodes(node):
                imports[inner.end_lineno] = inner

    def headed(node: ast.stmt) -> bool:
        """A reason in the comment lines above, or above the block of imports it is in."""
        above = node.lineno - 1
        if above in imports:
            return headed(imports[above])
        return any(LAZY.search(line) for line in _comment_block_above(lines, node.lineno))

    def justified(node: ast.stmt) -> bool:
        own = lines[node.lineno - 1 : node.end_lineno]
        return any(LAZY.search(line) for line in own) or headed(node)

    return sorted(
        (node.lineno, lines[node.lineno - 1].strip())
        for node in imports.values()
        if not justified(node)
    )


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


def test_the_function_checks_see_missing_reasons():
    source = "\n".join(
        [
            "def short():",
            "    import json  # lazy: optional dependency (dashboard extra)",
            "    import os",
            "",
            "",
            "def block():",
            "    # lazy: pyspark stays out of the single-node path",
            "    import pyspark",
            "    from pyspark.sql import functions as F",
            "",
            "    import numpy  # no reason",
            "",
            "",
            "# whole: one Spark plan, built as a single expression",
            "def kept():",
            *["    x = 1"] * 61,
            "",
            "",
            "def also_kept():",
            "    # whole: a table of columns, one line each",
            *["    x = 1"] * 61,
            "",
            "",
            "def poor_reason():",
            "    # whole: long",
            *["    x = 1"] * 61,
            "",
            "",
            "@decorated",
            "def bare():",
            '    """Docstring."""',
            *["    x = 1"] * 61,
        ]
    )
    assert function_imports_without_reason(source) == [
        (3, "import os"),
        (11, "import numpy  # no reason"),
    ]
    assert [name for _, name, _ in long_functions_without_reason(source)] == [
        "poor_reason",
        "bare",
    ]


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


def test_long_functions_say_why_they_stay_whole():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, name, length in long_functions_without_reason(path.read_text(encoding="utf-8")):
            found.append(f"{path.relative_to(ROOT).as_posix()}:{line} {name} ({length} lines)")
    assert not found, (
        f"functions over {MAX_FUNCTION_LINES} lines with no '# whole: <reason>' comment "
        "(split them, or say why they read best whole):\n" + "\n".join(found)
    )


def test_imports_inside_functions_say_why_they_are_lazy():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, text in function_imports_without_reason(path.read_text(encoding="utf-8")):
            found.append(f"{path.relative_to(ROOT).as_posix()}:{line} {text}")
    assert not found, (
        "imports inside functions with no '# lazy: <reason>' comment (move them to the top of "
        "the module, or say why they wait):\n" + "\n".join(found)
    )


def test_the_cli_module_imports_neither_spark_mlflow_nor_streamlit():
    """What ``custseg --help`` loads, in a fresh interpreter (this one may have pyspark)."""
    script = (
        "import sys, custseg.cli\n"
        "heavy = ('pyspark', 'mlflow', 'streamlit')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )
    path = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
