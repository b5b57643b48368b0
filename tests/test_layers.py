"""The package's shape: hub modules import each other in layers, never in a circle; the hub never
imports a converter by name, and converters never import each other (docs/design-notes.md)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Called methods that load a heavy module on use, and the module they load: plotting stays out of a read.
ON_USE = {("model", "visualize")}


def imports(path: Path, package: str) -> set[str]:
    """The modules of `package` that the file imports, anywhere in it but under ``if TYPE_CHECKING``."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            return
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if (node.level == 1 and path.parent.name == package) or module.startswith(f"{package}."):
                name = module.removeprefix(f"{package}.")
                found.update([name] if name else [alias.name for alias in node.names])
            elif module == package:
                found.update(alias.name for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def modules(folder: str) -> dict[str, Path]:
    return {path.stem: path for path in sorted((ROOT / folder).glob("*.py")) if path.stem not in ("__init__", "__main__")}


def test_hub_modules_import_in_layers():
    hub = modules("usidbridge")
    graph = {name: {other for other in imports(path, "usidbridge") if other in hub and (name, other) not in ON_USE} for name, path in hub.items()}
    done: set[str] = set()

    def walk(name: str, trail: list[str]) -> None:
        if name in trail:
            raise AssertionError("hub modules import each other in a circle: " + " -> ".join([*trail[trail.index(name):], name]))
        if name in done:
            return
        for other in sorted(graph[name]):
            walk(other, [*trail, name])
        done.add(name)

    for name in graph:
        walk(name, [])


def test_hub_and_converters_keep_apart():
    converters = modules("converters")
    for name, path in modules("usidbridge").items():
        assert not imports(path, "converters"), f"usidbridge/{name}.py imports a converter by name"
    for name, path in converters.items():
        assert not imports(path, "converters") & set(converters), f"converters/{name}.py imports another converter"
