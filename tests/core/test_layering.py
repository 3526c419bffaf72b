"""Imports only go down: framework-free core → torch/ and tensorflow/ → chapters/ → notebooks.

Every import in ``course_utils`` (module level *and* inside functions, i.e. lazy ones) is read
with :mod:`ast` and checked:

* the core (``course_utils/*.py``, ``course_utils/data/``) imports no framework half, no chapter
  module, and no deep-learning framework at module level;
* a framework half imports no chapter module and nothing of the other half;
* a chapter module imports no other chapter module (chapters are leaves);
* there is no import cycle between the package's modules.

The checker is run on a planted tree too, so a test proves it catches each kind of violation.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "course_utils"
FRAMEWORK_PACKAGES = {"torch": "tensorflow", "tensorflow": "torch"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path, root: Path) -> list[tuple[str, bool, int]]:
    """``(imported module, at module level?, line)`` for every import statement in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    top_level = {id(n) for n in tree.body}
    # imports under `if TYPE_CHECKING:` or `try:` at module level still count as module level
    for n in tree.body:
        if isinstance(n, (ast.If, ast.Try)):
            top_level |= {id(m) for m in ast.walk(n)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, id(node) in top_level, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from course_utils.torch import core` imports the submodule course_utils.torch.core
            names = [f"{mod}.{a.name}" for a in node.names]
            out.append((mod, id(node) in top_level, node.lineno))
            out += [(n, id(node) in top_level, node.lineno) for n in names]
    return out


def layer(mod: str) -> str:
    parts = mod.split(".")
    if parts[0] != "course_utils":
        return "external"
    if len(parts) > 1 and parts[1] in FRAMEWORK_PACKAGES:
        return parts[1]
    if len(parts) > 1 and parts[1] == "chapters":
        return "chapters"
    return "core"


def check_layers(root: Path) -> list[str]:
    """Every layering violation under the package folder ``root``, as readable lines."""
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    problems, edges = [], {m: set() for m in files}
    for mod, path in files.items():
        mine = layer(mod)
        for target, at_top, line in imports_of(path, root):
            where = f"{path.relative_to(root.parent)}:{line} imports {target}"
            theirs = layer(target)
            if target in files and target != mod:
                edges[mod].add(target)
            if theirs == "external":
                top = target.split(".")[0]
                if mine == "core" and at_top and top in FRAMEWORK_PACKAGES:
                    problems.append(f"{where}: the framework-free core imports {top} at module level")
                if mine in FRAMEWORK_PACKAGES and top == FRAMEWORK_PACKAGES[mine]:
                    problems.append(f"{where}: the {mine} half imports {top}")
                continue
            if mine == "core" and theirs != "core":
                problems.append(f"{where}: upward import from the core into {theirs}")
            elif mine in FRAMEWORK_PACKAGES and theirs == "chapters":
                problems.append(f"{where}: upward import from the {mine} half into a chapter module")
            elif mine in FRAMEWORK_PACKAGES and theirs == FRAMEWORK_PACKAGES[mine]:
                problems.append(f"{where}: the {mine} half imports the {theirs} half")
            elif mine == "chapters" and theirs == "chapters" and target.count(".") >= 2 \
                    and mod != "course_utils.chapters":
                problems.append(f"{where}: a chapter module imports another chapter module")
    problems += [f"import cycle: {' -> '.join(c)}" for c in _cycles(edges)]
    return problems


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles between modules; a package's ``__init__`` importing its own submodules, and
    a submodule importing a sibling through the package, are the normal package structure."""
    def relevant(a, b):
        return not (b.startswith(a + ".") or a.startswith(b + "."))

    graph = {a: {b for b in bs if relevant(a, b)} for a, bs in edges.items()}
    found, state, stack = [], {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                found.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    return found


def test_the_package_is_layered():
    problems = check_layers(ROOT)
    assert not problems, "\n".join(problems)


def test_the_checker_catches_planted_violations(tmp_path):
    pkg = tmp_path / "course_utils"
    for sub in ("", "torch", "tensorflow", "chapters", "data"):
        (pkg / sub).mkdir(parents=True, exist_ok=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "validation.py").write_text("import numpy as np\n")
    (pkg / "nets.py").write_text("from course_utils.validation import np\n")
    (pkg / "torch" / "core.py").write_text("from course_utils.nets import np\n")
    (pkg / "chapters" / "ch01.py").write_text("from course_utils.torch.core import np\n")
    assert check_layers(pkg) == []  # a clean tree passes

    plants = {
        "upward import": ("torch/first_order.py", "def f():\n    from course_utils.chapters.ch01 import np\n"),
        "core into": ("training.py", "from course_utils.torch import core\n"),
        "chapter module imports another": ("chapters/ch02.py", "from course_utils.chapters.ch01 import _private\n"),
        "imports the tensorflow half": ("torch/meta.py", "import course_utils.tensorflow.core\n"),
        "imports torch at module level": ("plots.py", "import torch\n"),
        "import cycle": ("seed.py", "import course_utils.env\n"),
    }
    (pkg / "env.py").write_text("def f():\n    from course_utils import seed\n")  # lazy half of the cycle
    for expected, (rel, code) in plants.items():
        (pkg / rel).write_text(code)
        problems = check_layers(pkg)
        assert any(expected in p for p in problems), (expected, problems)
        (pkg / rel).write_text("")
