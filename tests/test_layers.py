"""photokit's packages import only downwards: library -> faces -> stylegan2 -> prior -> restore, with db/ and
store/ beneath them, the CLI (and the web app) on top, and errors/reporting/settings/devices at the bottom.

Every import statement counts, also those inside functions (lazy imports are still dependencies)."""

from __future__ import annotations

import ast
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
