"""The package graph points one way: each package imports only from the layers below it (README, "Layers")."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Lowest first; packages on one row are peers and do not import each other.
LAYERS: list[tuple[str, ...]] = [
    ("text",),
    ("schemas",),
    ("storage",),
    ("embedding",),
    ("filters", "mining"),
    ("trainer",),
    ("report", "demo"),
    ("pipelines",),
]
LAYER_OF = {package: depth for depth, row in enumerate(LAYERS) for package in row}
NO_BEAM = ("text", "schemas", "embedding", "filters", "mining", "trainer", "report", "demo")
# storage/ is the one place outside pipelines/ that touches Beam, and only its filesystem layer (gcsio is
# the client behind Beam's gs:// filesystem, which storage/emulator.py points at an emulator).
STORAGE_BEAM = ("apache_beam.io.filesystems", "apache_beam.io.filesystem", "apache_beam.io.gcp.gcsio")
# pipelines/ modules that are wiring without a Beam graph of their own: the command line and the demo driver.
# Readers (pipelines/sources/) belong in pipelines/ whether or not a format needs Beam beyond the base reader.
PIPELINES_WITHOUT_BEAM = {"pipelines/__init__.py", "pipelines/cli.py", "pipelines/demo.py"}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports, at any depth (function-local imports included), with its line."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return found


def package_files() -> list[Path]:
    return sorted(p for package in LAYER_OF for p in (ROOT / package).rglob("*.py"))


def layer_violations(path: Path, root: Path = ROOT) -> list[str]:
    relative = path.relative_to(root).as_posix()
    own = relative.split("/")[0]
    problems = []
    for line, module in imported_modules(path):
        top = module.split(".")[0]
        where = f"{relative}:{line} imports {module}"
        if top == "apache_beam":
            if own in NO_BEAM:
                problems.append(f"{where}: {own}/ must not import Beam")
            elif own == "storage" and not module.startswith(STORAGE_BEAM):
                problems.append(f"{where}: storage/ may use only Beam's filesystems")
        elif top in LAYER_OF and top != own and LAYER_OF[top] >= LAYER_OF[own]:
            problems.append(f"{where}: {top}/ is not below {own}/")
    return problems


def test_every_package_is_in_a_layer() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "benchmarks"}
    assert packages == set(LAYER_OF)


def test_imports_point_down_the_layers() -> None:
    problems = [problem for path in package_files() for problem in layer_violations(path)]
    assert not problems, "\n".join(problems)


def test_pipelines_holds_beam_wiring() -> None:
    """A module of pipelines/ outside its readers builds Beam graphs; logic without Beam belongs below."""
    without = []
    for path in sorted((ROOT / "pipelines").glob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative not in PIPELINES_WITHOUT_BEAM and not any(m.startswith("apache_beam") for _, m in imported_modules(path)):
            without.append(relative)
    assert not without, f"pipelines/ modules without Beam: {without}"


@pytest.mark.parametrize(
    ("package", "source", "expected"),
    [
        ("filters", "import apache_beam as beam\n", "must not import Beam"),
        ("schemas", "from storage.files import join\n", "storage/ is not below schemas/"),
        ("filters", "from mining.negatives import select_negatives\n", "mining/ is not below filters/"),
        ("storage", "def f():\n    import apache_beam.transforms\n", "only Beam's filesystems"),
    ],
)
def test_the_check_catches_violations(tmp_path: Path, package: str, source: str, expected: str) -> None:
    module = tmp_path / package / "probe.py"
    module.parent.mkdir()
    module.write_text(source)
    problems = layer_violations(module, root=tmp_path)
    assert len(problems) == 1 and expected in problems[0]
