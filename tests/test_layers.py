"""photokit's packages import only downwards: library -> faces -> stylegan2 -> prior -> restore, with db/ and
store/ beneath them, the CLI (and the web app) on top, and errors/reporting/settings/devices at the bottom.

Every import statement counts, also those inside functions (lazy imports are still dependencies)."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "photokit"

# Higher ranks may import lower (or equal) ranks, never higher ones.
RANKS = {
    "errors": 0,
    "reporting": 0,
    "settings": 0,
    "devices": 0,
    "interrupts": 0,
    "pathtext": 0,  # the reversible text form of file names (errors use it)
    "validation": 0,  # checked_number: options refuse NaN and out-of-range numbers
    "__init__": 0,
    "db": 1,
    "store": 1,
    "jobs": 1,  # the job queue: rows of the library database claimed with a lease
    "library": 2,
    "faces": 3,
    "stylegan2": 4,
    "prior": 5,
    "restore": 6,
    # the applications: what a user runs, and presentation
    "status": 7,
    "progress": 7,
    "demo": 7,
    "distributed": 7,  # Ray workers running faces/ and restore/ jobs
    "__main__": 8,  # `python -m photokit` runs the CLI
    "cli": 8,
    "web": 8,
}


def layer_of(module: str) -> str:
    """'photokit.prior.storage' -> 'prior'; 'photokit' -> '__init__'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every photokit module ``path`` imports, resolving relative imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found.add(base)
            for alias in node.names:  # `from photokit import stylegan2` imports a module
                candidate = PACKAGE.parent / Path(*base.split("."), alias.name)
                if candidate.is_dir() or candidate.with_suffix(".py").is_file():
                    found.add(f"{base}.{alias.name}")
    return {m for m in found if m == "photokit" or m.startswith("photokit.")}


def upward_imports() -> list[str]:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = module_name(path)
        source_layer = layer_of(source)
        for target in imported_modules(path):
            target_layer = layer_of(target)
            if target_layer not in RANKS:
                continue  # a name imported from a module, not a module
            if RANKS[target_layer] > RANKS[source_layer]:
                problems.append(f"{source} ({source_layer}) imports {target} ({target_layer})")
    return problems


def test_every_package_has_a_rank():
    layers = {layer_of(module_name(p)) for p in PACKAGE.rglob("*.py")}
    assert not layers - RANKS.keys(), f"give these a place in the layer order: {sorted(layers - RANKS.keys())}"


def test_no_upward_imports():
    assert upward_imports() == []


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    (tmp_path / "photokit" / "library").mkdir(parents=True)
    bad = tmp_path / "photokit" / "library" / "bad.py"
    bad.write_text("def f():\n    from photokit.restore.pipeline import Enhancer\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "photokit")
    assert upward_imports() == ["photokit.library.bad (library) imports photokit.restore.pipeline (restore)"]


def third_party_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_presentation_lives_on_top():
    """Progress bars, consoles and command-line parsing belong to the top layer; below it, code reports
    through ``photokit.reporting``."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if RANKS[layer_of(module_name(path))] >= RANKS["status"]:
            continue
        used = third_party_imports(path) & {"rich", "typer", "click"}
        if used or "photokit.progress" in imported_modules(path):
            offenders.append(f"{module_name(path)}: {sorted(used) or ['photokit.progress']}")
    assert offenders == []


# Packages beneath the CLI and the web app: their user-visible strings say what went wrong, never which
# flag or command fixes it (an error's ``Remedy`` is turned into those words by cli/hints.py).
WORDING_PACKAGES = ("library", "faces", "prior", "restore", "stylegan2", "store", "db", "jobs", "distributed")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def command_names() -> set[str]:
    """photokit's top-level commands, read from the CLI itself."""
    import typer

    from photokit.cli.app import app

    return set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def docstring_nodes(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def cli_wording(path: Path, commands: set[str]) -> list[str]:
    """Non-docstring string literals in ``path`` that name a flag (``--force``) or a command (``photokit scan``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skip = docstring_nodes(tree)
    command = re.compile(r"\bphotokit (" + "|".join(sorted(commands)) + r")\b")
    found = []
    for node in ast.walk(tree):
        is_text = isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
        if is_text and (FLAG.search(node.value) or command.search(node.value)):
            found.append(f"{module_name(path)}:{node.lineno}: {node.value[:70]!r}")
    return found


def wording_offenders(commands: set[str]) -> list[str]:
    paths = [PACKAGE / "errors.py"]
    for package in WORDING_PACKAGES:
        paths += sorted((PACKAGE / package).rglob("*.py"))
    return [line for path in paths for line in cli_wording(path, commands)]


def test_library_strings_name_no_cli_flag_or_command():
    assert wording_offenders(command_names()) == []


def test_the_wording_check_sees_a_flag_and_a_command_but_not_a_docstring(tmp_path, monkeypatch):
    (tmp_path / "photokit" / "prior").mkdir(parents=True)
    (tmp_path / "photokit" / "errors.py").write_text('"""Run `photokit scan --force` (a docstring)."""\n')
    (tmp_path / "photokit" / "prior" / "bad.py").write_text(
        'def f():\n    """Docstrings may say --restart."""\n    return "pass --restart", f"see photokit prior {1}"\n'
    )
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "photokit")
    assert wording_offenders({"prior", "scan"}) == [
        "photokit.prior.bad:3: 'pass --restart'",
        "photokit.prior.bad:3: 'see photokit prior '",
    ]


def test_the_cli_has_words_for_every_remedy():
    """Library errors leave the command to the CLI: each remedy must have its sentence there."""
    from photokit.cli.hints import error_line
    from photokit.errors import PhotokitError, Remedy

    for remedy in Remedy:
        line = error_line(PhotokitError("it failed", remedy, person_id=7, model="ffhq-256"))
        assert line.startswith("it failed; ") and len(line) > len("it failed; "), remedy
