"""The layer contract of the package (README, Architecture): every import — at module level or inside a function
— points down the layers, siblings do not import each other, and no import cycle exists between modules.

Plug-ins, tasks, architectures and CLI verbs are named in registry tables of ``"nlp_cv_tricks.module:attr"``
strings (imported on use). Such a string is an import too, and so is the target of ``import_module`` /
``import_target``: a table lives in the package whose items it lists (or above it), never in a lower layer."""

import ast
import re
from pathlib import Path


PKG = Path(__file__).resolve().parents[1] / "nlp_cv_tricks"

# top to bottom; modules of one row may import only rows below them, and within a row only their own group.
# The runner wires the end-of-run report (report/run_report.py), and the run report shows the doctor's verdict:
# so report/ and the diagnostics' analysis sit below the runner (their commands are in the CLI row). The
# integrations build their plug-ins through the runner, the one place where names become objects.
LAYERS = [
    {"cli": ["cli", "__main__"]},
    {"experiments": ["ablate", "experiments"], "hardcases": ["hardcases"], "hub": ["hub"]},
    {"inference": ["inference"]},
    {"integrations": ["integrations"]},
    {"runner": ["runner"]},
    {"report": ["report"]},
    {"diagnostics": ["diagnostics"]},
    {"tasks": ["tasks"], "tricks": ["tricks"], "callbacks": ["callbacks"]},
    {"engine": ["engine"]},
    {"models": ["models"]},
    {"data": ["data"], "metrics": ["metrics"]},
    {"config": ["config", "recipe_catalog"]},
    {"utils": ["utils"]},
]


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _place(mod: str):
    """(row, group) of a module name relative to the package ('' = the package's __init__)."""
    best = None
    for row, groups in enumerate(LAYERS):
        for group, prefixes in groups.items():
            for p in prefixes:
                if mod == p or mod.startswith(p + "."):
                    if best is None or len(p) > best[2]:
                        best = (row, group, len(p))
    return None if best is None else best[:2]


_TARGET = re.compile(r"nlp_cv_tricks((?:\.\w+)*)(?::[\w.]+)?")
_DYNAMIC = {"import_module", "import_target"}


def _string_target(node: ast.AST, mod_parts: list):
    """The module a ``"nlp_cv_tricks.x.y:attr"`` string names (an ``import_module``/``import_target`` argument
    may also be ``"nlp_cv_tricks.x.y"`` or a relative ``".x"`` with ``package=__package__``), else None."""
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        return None
    m = _TARGET.fullmatch(node.value)
    if m and (":" in node.value or getattr(node, "_dynamic", False)):
        return m.group(1)[1:]
    if getattr(node, "_dynamic", False) and node.value.startswith("."):
        level = len(node.value) - len(node.value.lstrip("."))
        anchor = mod_parts[: len(mod_parts) - (level - 1)] if level > 1 else mod_parts
        return ".".join([*anchor, *filter(None, node.value.lstrip(".").split("."))])
    return None


def _imports(path: Path, mod: str):  # noqa: C901  (one branch per kind of import)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    for node in ast.walk(tree):  # mark the first argument of import_module(...) / import_target(...)
        if isinstance(node, ast.Call) and node.args:
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in _DYNAMIC:
                node.args[0]._dynamic = True
    for node in ast.walk(tree):
        target = _string_target(node, base)
        if target is not None:
            yield node.lineno, target
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "nlp_cv_tricks" or a.name.startswith("nlp_cv_tricks."):
                    yield node.lineno, a.name[len("nlp_cv_tricks."):] if "." in a.name else ""
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join([*anchor, *(node.module.split(".") if node.module else [])])
            elif node.module and (node.module == "nlp_cv_tricks" or node.module.startswith("nlp_cv_tricks.")):
                target = node.module[len("nlp_cv_tricks."):] if "." in node.module else ""
            else:
                continue
            names = [a.name for a in node.names]
            # "from . import x" / "from .pkg import sub": the submodule is the target when it is one
            for n in names:
                cand = f"{target}.{n}" if target else n
                if (PKG / cand.replace(".", "/")).with_suffix(".py").exists() or (PKG / cand.replace(".", "/")).is_dir():
                    yield node.lineno, cand
                else:
                    yield node.lineno, target


def _graph():
    graph = {}
    for path in sorted(PKG.rglob("*.py")):
        mod = _module_name(path)
        graph[mod] = (path, sorted({t for _, t in _imports(path, mod)} - {mod}), list(_imports(path, mod)))
    return graph


def test_every_module_has_a_layer():
    missing = [m for m in _graph() if m and _place(m) is None]
    assert not missing, f"modules outside the layer table: {missing}"


def _exists(mod: str) -> bool:
    path = PKG / mod.replace(".", "/") if mod else PKG
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_every_import_of_the_package_names_a_module_that_exists():
    # an import inside a function is only run when that code path is: a moved module must not leave one behind
    bad = [f"{path.relative_to(PKG.parent)}:{line} imports {target or 'nlp_cv_tricks'}"
           for mod, (path, _, imports) in _graph().items() for line, target in imports if not _exists(target)]
    assert not bad, "imports of modules that do not exist:\n" + "\n".join(bad)


def test_imports_only_point_down():
    bad = []
    for mod, (path, _, imports) in _graph().items():
        if not mod:
            continue  # the package __init__ is lazy: it imports nothing of its own
        here = _place(mod)
        for line, target in imports:
            if not target:
                bad.append(f"{path.relative_to(PKG.parent)}:{line} imports the package root")
                continue
            there = _place(target)
            if there is None or there == here:
                continue
            if there[0] <= here[0]:
                bad.append(f"{path.relative_to(PKG.parent)}:{line} {mod} ({here[1]}) -> {target} ({there[1]})")
    assert not bad, "upward or sideways imports:\n" + "\n".join(bad)


# Today's cycles, each closed by one edge; the list only shrinks (a test below fails once an entry is gone):
KNOWN_CYCLE_EDGES = {
}


def test_no_import_cycles():
    graph = {m: deps for m, (_, deps, _) in _graph().items()}
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in graph.get(m, []):
            if d not in graph or d == "":
                continue
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for src, dst in KNOWN_CYCLE_EDGES:
        assert dst in graph.get(src, []), f"{src} -> {dst} is gone: remove it from KNOWN_CYCLE_EDGES"
        graph[src] = [d for d in graph[src] if d != dst]
    for m in graph:
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_engine_imports_no_task_trick_model_or_cli():
    # stricter than the row order: the engine takes ready objects (names are looked up by the runner)
    bad = [f"{path.relative_to(PKG.parent)}:{line} {mod} -> {target}"
           for mod, (path, _, imports) in _graph().items() if mod.startswith("engine")
           for line, target in imports
           if target.split(".")[0] in ("tasks", "tricks", "callbacks", "models", "cli", "runner", "inference",
                                       "report", "diagnostics")]
    assert not bad, "the engine imports upward:\n" + "\n".join(bad)



def test_module_attr_strings_and_dynamic_imports_count_as_imports(tmp_path):
    src = tmp_path / "fake.py"
    src.write_text('import importlib\n'
                   'from nlp_cv_tricks.utils.registry import import_target\n'
                   'TABLE = {"rdrop": "nlp_cv_tricks.tricks.rdrop:RDrop"}\n'
                   'importlib.import_module("nlp_cv_tricks.tasks.long_text")\n'
                   'importlib.import_module(".lr", __package__)\n'
                   'import_target("nlp_cv_tricks.report:write_report")\n'
                   'NOTE = "nlp_cv_tricks.data is not an import, nor is nlp_cv_tricks.metrics"\n')
    found = {target for _, target in _imports(src, "engine.fake")}
    assert found == {"utils.registry", "tricks.rdrop", "tasks.long_text", "engine.lr", "report"}
    # the real tables are seen: the callback table names its modules
    assert {"callbacks.grad_norm", "callbacks.train_eval"} <= set(_graph()["callbacks.registry"][1])


def test_only_the_cli_parses_arguments():
    # a feature offers functions; the verbs that parse a command line and print its result live in cli/
    bad = [str(p.relative_to(PKG.parent)) for p in sorted(PKG.rglob("*.py")) if p.relative_to(PKG).parts[0] != "cli"
           and re.search(r"^\s*(import argparse|from argparse import)", p.read_text(encoding="utf-8"), re.M)]
    assert not bad, "argparse outside nlp_cv_tricks/cli/: " + ", ".join(bad)
