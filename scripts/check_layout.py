"""Check the package layout: at most 15 modules at the top of the package, and no import circles.

Every import statement counts, wherever it stands: at module level, inside a function (a lazy
import that closes a circle is still a circle) and under ``if TYPE_CHECKING:``.  One exception:
the root package's own ``if TYPE_CHECKING:`` block, which declares for type checkers the public
names that its ``__getattr__`` serves lazily; nothing imports through it at run time.

Usage: ``python scripts/check_layout.py [PACKAGE_DIR]`` (default: the failover_client package
beside this script).  Prints what is wrong and exits 1, or exits 0 silently.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_TOP_LEVEL_MODULES = 15


def module_names(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (packages by __init__.py)."""
    names = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _is_type_checking_block(node: ast.stmt) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def imports_of(name: str, path: Path, modules: dict[str, Path], root: str) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its body."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    if name == root:  # the root's TYPE_CHECKING block declares re-exports; it imports nothing at run time
        tree.body = [node for node in tree.body if not _is_type_checking_block(node)]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # a submodule named in the list, else a name of the target module
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in modules else target)
    return {target for target in found if target in modules and target != name}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def problems(package: Path) -> list[str]:
    modules = module_names(package)
    root = package.name
    graph = {name: imports_of(name, path, modules, root) for name, path in modules.items()}
    found = [f"import circle: {' <-> '.join(component)}" for component in circles(graph)]
    top_level = sorted(path.name for path in package.glob("*.py"))
    if len(top_level) > MAX_TOP_LEVEL_MODULES:
        found.append(f"{len(top_level)} modules at the top of {root}/ (at most {MAX_TOP_LEVEL_MODULES}): "
                     + ", ".join(top_level))
    return found


def main(argv: list[str]) -> int:
    package = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent / "failover_client"
    found = problems(package)
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
