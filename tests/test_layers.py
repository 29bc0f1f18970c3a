"""The package's import graph: layers point down only, and no module imports itself back.

Layers, high to low: commands > workflows > evaluation > model > ground (data, config and
small utilities). Every import counts, including those deferred into function bodies, so
deferring an import cannot hide an upward edge or a loop.
"""
import ast
import os
import pkgutil

import pytest

import ladder_tf

PACKAGE_DIR = os.path.dirname(ladder_tf.__file__)
LAYERS = {"commands": 5, "workflows": 4, "evaluation": 3, "model": 2}  # anything else: ground, 1
LAYER_NAMES = {5: "commands", 4: "workflows", 3: "evaluation", 2: "model", 1: "ground"}


def modules() -> dict[str, str]:
    """Module name -> file path for every module of the package."""
    found = {"ladder_tf": os.path.join(PACKAGE_DIR, "__init__.py")}
    for info in pkgutil.walk_packages([PACKAGE_DIR], "ladder_tf."):
        rel = info.name.split(".")[1:]
        path = os.path.join(PACKAGE_DIR, *rel)
        found[info.name] = os.path.join(path, "__init__.py") if info.ispkg else path + ".py"
    return found


def layer(module: str) -> int:
    parts = module.split(".")
    if module == "ladder_tf.__main__":
        return 5
    return LAYERS.get(parts[1], 1) if len(parts) > 1 else 1


def imports(path: str, module: str, known: dict[str, str]) -> set[str]:
    """The package modules ``path`` imports, wherever the import statement stands."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    out = set()
    package = module if path.endswith("__init__.py") else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("ladder_tf")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            if not base.startswith("ladder_tf"):
                continue
            for alias in node.names:  # `from pkg import submodule` imports the submodule
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in known else base)
    return {m for m in out if m in known and m != module}


@pytest.fixture(scope="module")
def graph():
    known = modules()
    return {m: imports(p, m, known) for m, p in known.items()}


def test_the_walk_sees_the_whole_package(graph):
    assert len(graph) > 50
    assert "ladder_tf.model.elbo" in graph["ladder_tf.model.vae"]  # `from ladder_tf.model import elbo`
    assert "ladder_tf.workflows.evaluate" in graph["ladder_tf.commands.evaluate"]
    assert "ladder_tf.workflows.results" in graph["ladder_tf.commands.reproduce"]  # a deferred import


def test_no_upward_import(graph):
    upward = sorted(f"{m} ({LAYER_NAMES[layer(m)]}) imports {d} ({LAYER_NAMES[layer(d)]})"
                    for m, deps in graph.items() for d in deps if layer(d) > layer(m))
    assert not upward, "\n".join(upward)


def test_no_import_loop(graph):
    index, low, stack, on_stack, loops = {}, {}, [], set(), []

    def connect(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    assert not loops, "import loops: " + "; ".join(" <-> ".join(c) for c in loops)


def test_the_checks_can_fail():
    """The checks catch what they are for, on a made-up graph."""
    fake = {"ladder_tf.model.vae": {"ladder_tf.workflows.training"},
            "ladder_tf.workflows.training": {"ladder_tf.model.vae"}}
    with pytest.raises(AssertionError, match="imports ladder_tf.workflows.training"):
        test_no_upward_import(fake)
    with pytest.raises(AssertionError, match="import loops"):
        test_no_import_loop(fake)
