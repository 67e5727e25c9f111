"""Fingerprints of code: a hash over every source file a step's work comes from.

A step's recipe covers the file that defines its project class, the files of every base class
(a shared API-service shape, say), and, transitively, every module of stackmagic those files
import (``api_service.configure_authtoken``, ``wsgi.shim``, ``identity``): editing any of them re-runs the
steps whose code they are. Imports made only for type checking (``if TYPE_CHECKING:``) do not
count; they run no code.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import inspect
from pathlib import Path
from typing import Any

PACKAGE = "stackmagic"


def recipe(obj: Any) -> str:
    """The hash of the code behind ``obj`` (a module, a class, or an instance of one)."""
    target = obj if inspect.ismodule(obj) or inspect.isclass(obj) else type(obj)
    files: set[str] = set()
    classes = target.__mro__ if inspect.isclass(target) else (target,)
    for item in classes:
        if item is object:
            continue
        try:
            path = inspect.getfile(item)
        except (TypeError, OSError):
            continue
        if path.endswith(".py"):
            files |= _closure(path, getattr(inspect.getmodule(item), "__name__", ""))
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.encode() + b"\0" + file_hash(path).encode())
    return digest.hexdigest()[:16]


def clear() -> None:
    """Forget what was read (files were edited in this process)."""
    file_hash.cache_clear()
    _closure.cache_clear()
    _imports.cache_clear()
    _spec.cache_clear()


@functools.lru_cache(maxsize=None)
def file_hash(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def _closure(path: str, module: str) -> frozenset[str]:
    """``path`` and the files of every stackmagic module it imports, transitively."""
    seen = {path}
    todo = [(path, module)]
    while todo:
        current, name = todo.pop()
        for imported in _imports(current, name):
            spec = _spec(imported)
            origin = spec.origin if spec else None
            if origin and origin.endswith(".py") and origin not in seen:
                seen.add(origin)
                todo.append((origin, imported))
    return frozenset(seen)


@functools.lru_cache(maxsize=None)
def _spec(name: str):
    if not (name == PACKAGE or name.startswith(PACKAGE + ".")):
        return None
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None


@functools.lru_cache(maxsize=None)
def _imports(path: str, module: str) -> frozenset[str]:
    """The stackmagic modules ``path`` (module ``module``) imports outside type-checking blocks."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return frozenset()
    is_package = Path(path).name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1] if node.level > 1 else parts
                base = ".".join([p for p in parts if p] + ([node.module] if node.module else []))
            if base:
                # ``from pkg import module`` runs that module's code, not more of pkg than
                # its __init__ (which is counted only when a name comes from it)
                modules = {f"{base}.{a.name}" for a in node.names if _spec(f"{base}.{a.name}")}
                found.update(modules)
                if len(modules) < len(node.names):
                    found.add(base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return frozenset(n for n in found if n == PACKAGE or n.startswith(PACKAGE + "."))


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
