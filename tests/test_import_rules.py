"""Runtime code never imports the emulation layer or moto (decision D3).

What an operator runs (failover, backup, settings, components, the policy pack, the scripts'
logic) must work on a machine without moto, and must never be able to take an emulated shortcut.
The check is static: every ``import`` in every first-party module (function-level ones too),
followed transitively through first-party modules. A module is runtime unless it is listed in
``DEV_ONLY``, so a new module is held to the rule by default.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("caresync_dr", "components", "scripts", "policy")
# Development, test and CI tooling: the drill, the emulation layer, the offline Pulumi runtime
# and what runs on it (preview, the Checkov scan of exported plans: both check the program under
# mocks, with the AWS rules oracle), throwaway PostgreSQL clusters.
DEV_ONLY = ("caresync_dr.drill", "caresync_dr.emulation", "caresync_dr.offline",
            "caresync_dr.preview", "caresync_dr.scan", "caresync_dr.pg", "policy.local",
            "caresync_dr.commands.drill", "caresync_dr.commands.preview",
            "caresync_dr.commands.security_scan",
            "scripts.drill", "scripts.preview", "scripts.security_scan")
FORBIDDEN = ("moto", "caresync_dr.emulation", "caresync_dr.drill")


def _within(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(path: Path, module: str) -> set[str]:
    """Every module name a file imports; ``from a import b`` gives ``a`` and ``a.b``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph(root: Path, packages: Iterable[str]) -> dict[str, set[str]]:
    files = [p for pkg in packages for p in sorted((root / pkg).rglob("*.py"))]
    files += [p for p in (root / "__main__.py",) if p.exists()]
    return {module_name(p, root): imported_names(p, module_name(p, root)) for p in files}


def violations(graph: dict[str, set[str]], dev_only: Iterable[str] = DEV_ONLY,
               forbidden: Iterable[str] = FORBIDDEN) -> list[str]:
    """Each runtime module that reaches a forbidden module, with the import chain."""
    dev_only, forbidden = tuple(dev_only), tuple(forbidden)
    found = []
    for start in sorted(graph):
        if _within(start, dev_only):
            continue
        chains: dict[str, list[str]] = {start: [start]}
        todo = [start]
        while todo:
            current = todo.pop()
            for name in sorted(graph.get(current, ())):
                if _within(name, forbidden):
                    found.append(" -> ".join([*chains[current], name]))
                    todo.clear()
                    break
                if name in graph and name not in chains:
                    chains[name] = [*chains[current], name]
                    todo.append(name)
    return found


def test_runtime_modules_never_reach_moto_or_the_emulation_layer() -> None:
    graph = import_graph(ROOT, PACKAGES)
    runtime = [m for m in graph if not _within(m, DEV_ONLY)]
    assert "caresync_dr.failover.command" in runtime and "components.site" in runtime
    assert violations(graph) == []


def test_the_check_sees_a_transitive_function_level_import(tmp_path: Path) -> None:
    """The rule can fail: a runtime module that reaches moto through a helper, inside a
    function, by a relative import."""
    pkg = tmp_path / "caresync_dr"
    (pkg / "failover").mkdir(parents=True)
    (pkg / "emulation").mkdir()
    for init in (pkg, pkg / "failover", pkg / "emulation"):
        (init / "__init__.py").write_text("")
    (pkg / "failover" / "steps.py").write_text("from . import helpers\n")
    (pkg / "failover" / "helpers.py").write_text(
        "def promote() -> None:\n    from ..emulation.rds import finish\n")
    (pkg / "emulation" / "rds.py").write_text("import moto.rds.models\n")
    (pkg / "settings.py").write_text("import boto3\nfrom moto import mock_aws\n")
    (pkg / "inventory.py").write_text("import boto3\n")
    graph = import_graph(tmp_path, ["caresync_dr"])
    assert violations(graph) == [
        "caresync_dr.failover.helpers -> caresync_dr.emulation.rds",
        "caresync_dr.failover.steps -> caresync_dr.failover.helpers -> "
        "caresync_dr.emulation.rds",
        "caresync_dr.settings -> moto",
    ]


TEST_WORDS = ("test", "tests")


def looks_like_a_test(name: str) -> bool:
    """A name whose first or last word is "test": what pytest collects by default (``test_*.py``,
    ``*_test.py``) and what a reader takes for a test, whatever the separator."""
    words = [word for word in re.split(r"[-_.]", name.lower()) if word]
    return bool(words) and (words[0] in TEST_WORDS or words[-1] in TEST_WORDS)


def production_names() -> dict[str, str]:
    """Every name of production code an operator or pytest sees, by where it is: the packages'
    modules, every file in scripts/ (Python or shell), the console entry points and the
    systemd units. Values: the name to judge (a file's stem)."""
    files = [path for package in PACKAGES for path in (ROOT / package).rglob("*.py")]
    files += [path for path in (ROOT / "scripts").iterdir() if path.is_file()]
    files += [path for path in (ROOT / "deploy").rglob("*")
              if path.is_file() and path.suffix in (".service", ".timer")]
    names = {str(path.relative_to(ROOT)): path.stem for path in files}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names.update({f"pyproject.toml entry point {name}": name for name in project["scripts"]})
    return names


def test_no_production_name_looks_like_a_test() -> None:
    """Issue 12 item 5: pytest collects ``test_*.py`` and ``*_test.py`` by default, and a
    reader takes them for tests (caresync_dr/notify/channel_test.py was notify.py --test's
    logic). scripts/ was exempt for restore_test.py, the daily restore check, which its entry
    point caresync-restore-test and its systemd units echoed: all renamed restore_check."""
    named = production_names()
    assert sorted(where for where, name in named.items() if looks_like_a_test(name)) == []


def test_the_name_rule_can_fail() -> None:
    assert all(looks_like_a_test(name) for name in (
        "restore_test", "test_restore", "caresync-restore-test", "tests", "Test-thing"))
    assert not any(looks_like_a_test(name) for name in (
        "restore_testing", "restore_check", "attest", "contest_entry", "latest"))
    names = production_names()
    assert names["scripts/rollback.sh"] == "rollback"
    assert names["pyproject.toml entry point caresync-failover"] == "caresync-failover"
    assert names["deploy/systemd/caresync-backup.timer"] == "caresync-backup"
