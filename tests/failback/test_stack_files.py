"""The three lifecycle settings are edited as `pulumi config set/rm` would, keeping every other
line, and a result the settings loader refuses is never written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from caresync_dr.failback.stack_files import (
    GenerationSettings,
    read_generation_settings,
    write_generation_settings,
)
from caresync_dr.settings import RetiringGeneration, SettingsError
from tests.ci_paths import ROOT


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml", "Pulumi.dr.yaml"):
        shutil.copy2(ROOT / name, tmp_path / name)
    return tmp_path


def test_set_then_remove_keeps_every_other_line(project: Path) -> None:
    original = (project / "Pulumi.prod.yaml").read_text()
    reprotect = GenerationSettings("standby", 2, RetiringGeneration(1, "writer"))
    assert write_generation_settings("prod", project, reprotect)
    assert read_generation_settings("prod", project) == reprotect
    edited = (project / "Pulumi.prod.yaml").read_text()
    changed = set(edited.splitlines()) ^ set(original.splitlines())
    assert changed == {"  caresync-dr:activeSite: primary", "  caresync-dr:activeSite: standby",
                       '  caresync-dr:dbGeneration: "1"', '  caresync-dr:dbGeneration: "2"',
                       "  caresync-dr:dbRetiring: {generation: 1, role: writer}"}
    assert original.splitlines()[0] in edited  # the comment line is kept
    assert not write_generation_settings("prod", project, reprotect)  # already so
    retired = GenerationSettings("standby", 2, None)
    assert write_generation_settings("prod", project, retired)
    assert "dbRetiring" not in (project / "Pulumi.prod.yaml").read_text()


def test_a_setting_the_loader_refuses_is_never_written(project: Path) -> None:
    before = (project / "Pulumi.prod.yaml").read_text()
    # With the standby writing, the primary site's generation 1 cannot be a replica (RDS
    # cannot re-source an existing instance).
    with pytest.raises(SettingsError, match="dbGeneration"):
        write_generation_settings("prod", project, GenerationSettings("standby", 1, None))
    assert (project / "Pulumi.prod.yaml").read_text() == before
    assert not list(project.glob(".Pulumi.prod.yaml.*"))  # no temporary file left
