"""No RDD API and no SparkContext on any path: the same code must run on Spark Connect and
Databricks shared or serverless compute, where neither exists. Checked on the syntax tree,
so docstrings that name them do not count."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "src" / "custseg"
ATTRIBUTES = {"rdd", "sparkContext", "_jsc", "_jvm", "parallelize", "broadcast"}
NAMES = {"SparkContext", "RDD"}


def _offences(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ATTRIBUTES:
            yield node.lineno, f".{node.attr}"
        elif isinstance(node, ast.Name) and node.id in NAMES:
            yield node.lineno, node.id
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name in NAMES:
                    yield node.lineno, f"import {alias.name}"


def test_package_uses_neither_rdds_nor_the_spark_context():
    offenders = [
        f"{path.relative_to(PACKAGE)}:{line}: {what}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, what in _offences(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert not offenders, "\n".join(offenders)


def test_the_scan_finds_an_rdd_call():
    assert list(_offences(ast.parse("df.rdd.map(f)\nspark.sparkContext.parallelize([1])")))
