"""Which package may import which (docs/architecture.md), read from every module's ``ast``.

- ``model`` may import ``stream_ids``, never the reverse; ``stream_ids`` never imports
  ``producers`` either. The only exceptions are the CLI's front doors in
  :data:`FRONT_DOORS` (a command that runs training or a producer); the worker is none of them.
- ``stream_ids/commands/*`` never import each other: shared helpers live in
  ``stream_ids/commands/_shared.py``.
- ``producers`` and ``model`` never import the CLI (``stream_ids.cli``, ``stream_ids.commands``);
  ``producers`` never imports ``model``.
- The wire format is written in ``stream_ids/wire`` only: other modules import the package
  ``stream_ids.wire``, not its modules, and spell no non-finite number ("Infinity") or schema-1
  flow object (a dict with ``schema``, ``flow_id`` and ``features``) themselves.
- Faust's (and aiokafka's) private attributes are read in ``stream_ids/faust_fixes`` only (the
  names its start-up check lists, :data:`stream_ids.faust_fixes.checks.INTERNALS`); other
  modules of ``stream_ids`` go through that package.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("stream_ids", "model", "producers")
# (importing module, imported module): commands whose whole job is to run another package
FRONT_DOORS = frozenset({
    ("stream_ids.commands.train", "model.train"),
    ("stream_ids.commands.replay", "producers.replay"),
    ("stream_ids.commands.relay", "producers.relay"),
    ("stream_ids.commands.demo", "producers.replay"),
})
NON_FINITE_SPELLINGS = frozenset({"Infinity", "-Infinity"})  # "NaN" is also CSV text
FLOW_OBJECT_KEYS = frozenset({"schema", "flow_id", "features"})


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    tree: ast.Module


def modules(root: Path) -> list[Module]:
    """Every module of :data:`PACKAGES` under ``root``, parsed."""
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found.append(Module(".".join(parts), path, ast.parse(path.read_text(), str(path))))
    return found


def imported(module: Module, root: Path) -> list[tuple[str, int]]:
    """(absolute module name, line) of every import in ``module``, inside functions too.

    ``from X import Y`` counts as ``X``, and as ``X.Y`` where Y is a module of X (so
    ``from stream_ids.commands import stats`` is seen as importing that command).
    """
    is_package = module.path.name == "__init__.py"
    out: list[tuple[str, int]] = []
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            out.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.name.split(".")
                anchor = parts if is_package else parts[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            out.append((base, node.lineno))
            folder = root.joinpath(*base.split("."))
            out.extend(
                (f"{base}.{alias.name}", node.lineno)
                for alias in node.names
                if (folder / f"{alias.name}.py").is_file() or (folder / alias.name).is_dir()
            )
    return out


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def import_violations(root: Path) -> list[str]:
    """Each import that breaks a rule of the module docstring, as ``module:line: why``."""
    problems = []
    for module in modules(root):
        for name, line in imported(module, root):
            where = f"{module.name}:{line}: imports {name}"
            top = module.name.split(".")[0]
            outward = _within(name, "model") or _within(name, "producers")
            if top == "stream_ids" and outward and (module.name, name) not in FRONT_DOORS:
                problems.append(f"{where} (stream_ids never imports model or producers)")
            if (
                _within(module.name, "stream_ids.commands")
                and name.startswith("stream_ids.commands.")
                and not name.split(".")[2].startswith("_")
                and name.split(".")[2] != module.name.split(".")[-1]
            ):
                problems.append(f"{where} (commands share helpers through commands._shared)")
            if top in ("model", "producers") and (
                _within(name, "stream_ids.cli") or _within(name, "stream_ids.commands")
            ):
                problems.append(f"{where} ({top} never imports the CLI)")
            if top == "producers" and _within(name, "model"):
                problems.append(f"{where} (producers never import model)")
            if name.startswith("stream_ids.wire.") and not _within(module.name, "stream_ids.wire"):
                problems.append(f"{where} (import the package stream_ids.wire)")
    return problems


def hand_written_wire(root: Path) -> list[str]:
    """Places outside ``stream_ids/wire`` that spell wire format themselves."""
    problems = []
    for module in modules(root):
        if _within(module.name, "stream_ids.wire"):
            continue
        for node in ast.walk(module.tree):
            line = getattr(node, "lineno", 0)
            if isinstance(node, ast.Constant) and node.value in NON_FINITE_SPELLINGS:
                problems.append(f"{module.name}:{line}: spells {node.value!r} (wire.numbers)")
            if isinstance(node, ast.Dict):
                keys = {key.value for key in node.keys if isinstance(key, ast.Constant)}
                if keys >= FLOW_OBJECT_KEYS:
                    problems.append(f"{module.name}:{line}: a flow object (wire.flow_object)")
    return problems


def private_faust_reads(root: Path) -> list[str]:
    """Places in ``stream_ids`` outside ``stream_ids/faust_fixes`` that read a private
    attribute of Faust or aiokafka (on anything but ``self``), directly or by ``getattr``."""
    from stream_ids.faust_fixes.checks import INTERNALS

    names = {internal.attribute for internal in INTERNALS if internal.attribute.startswith("_")}
    problems = []
    for module in modules(root):
        if not _within(module.name, "stream_ids") or _within(module.name, "stream_ids.faust_fixes"):
            continue
        for node in ast.walk(module.tree):
            line = getattr(node, "lineno", 0)
            if (
                isinstance(node, ast.Attribute)
                and node.attr in names
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                problems.append(f"{module.name}:{line}: reads .{node.attr} (faust_fixes)")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr", "setattr")
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and node.args[1].value in names
            ):
                problems.append(f"{module.name}:{line}: reads {node.args[1].value} (faust_fixes)")
    return problems


def test_faust_internals_are_read_in_faust_fixes_only() -> None:
    assert private_faust_reads(ROOT) == []


def test_a_planted_faust_internal_read_is_found(tmp_path: Path) -> None:
    _plant(tmp_path, {
        "stream_ids/agents.py": "def f(app):\n    return app._consumer._acked\n",
        "stream_ids/worker.py": "def g(c):\n    return getattr(c, '_read_offset', None)\n",
        "stream_ids/faust_fixes/fix.py": "def h(app):\n    return app._consumer\n",
        "stream_ids/topic_reader.py": "class R:\n    def r(self):\n        return self._consumer\n",
    })
    assert sorted(problem.split(": reads")[0] for problem in private_faust_reads(tmp_path)) == [
        "stream_ids.agents:2", "stream_ids.agents:2", "stream_ids.worker:2",
    ]


def test_packages_import_only_what_the_rules_allow() -> None:
    assert import_violations(ROOT) == []


def test_no_wire_format_is_written_outside_stream_ids_wire() -> None:
    assert hand_written_wire(ROOT) == []


def _plant(root: Path, files: dict[str, str]) -> None:
    for package in PACKAGES:
        (root / package).mkdir(parents=True, exist_ok=True)
        (root / package / "__init__.py").write_text("")
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"stream_ids/scorer.py": "def f():\n    import model.cnn_lstm\n"},
         "stream_ids.scorer:2: imports model.cnn_lstm"),
        ({"stream_ids/commands/worker.py": "from producers.replay import ensure_topic\n"},
         "stream_ids.commands.worker:1: imports producers.replay"),
        ({"stream_ids/commands/__init__.py": "",
          "stream_ids/commands/train.py": "from stream_ids.commands.evaluate import p\n"},
         "stream_ids.commands.train:1: imports stream_ids.commands.evaluate"),
        ({"stream_ids/commands/__init__.py": "",
          "stream_ids/commands/replay.py": "",
          "stream_ids/commands/stats.py": "from . import replay\n"},
         "stream_ids.commands.stats:1: imports stream_ids.commands.replay"),
        ({"model/train.py": "from stream_ids.cli import main\n"},
         "model.train:1: imports stream_ids.cli"),
        ({"producers/replay.py": "from stream_ids.wire.numbers import encode_number\n"},
         "producers.replay:1: imports stream_ids.wire.numbers"),
    ],
)
def test_a_planted_violation_is_found(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    _plant(tmp_path, files)
    assert any(problem.startswith(expected) for problem in import_violations(tmp_path)), (
        import_violations(tmp_path)
    )


def test_allowed_imports_are_not_reported(tmp_path: Path) -> None:
    _plant(tmp_path, {
        "stream_ids/commands/__init__.py": "",
        "stream_ids/commands/train.py": "from stream_ids.commands._shared import p\n"
        "def run():\n    from model.train import train\n",
        "stream_ids/offline.py": "from stream_ids.wire import check_rows\n",
        "model/train.py": "from stream_ids import artifacts\n",
        "producers/relay.py": "from producers.replay import ensure_topic\n",
    })
    assert import_violations(tmp_path) == []


def test_hand_written_wire_format_is_found(tmp_path: Path) -> None:
    _plant(tmp_path, {
        "producers/relay.py": 'x = "Infinity"\n'
        'y = {"schema": 1, "flow_id": "f", "src_ip": "h", "features": {}}\n',
        "stream_ids/wire/numbers.py": 'z = "Infinity"\n',
    })
    problems = hand_written_wire(tmp_path)
    assert [problem.split(":")[0] for problem in problems] == ["producers.relay"] * 2
