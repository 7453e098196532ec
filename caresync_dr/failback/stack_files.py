"""Read and edit the three settings that say which site writes and which generation each site
runs (``activeSite``, ``dbGeneration``, ``dbRetiring``) in ``Pulumi.<stack>.yaml``.

The edit is what ``pulumi config set`` / ``pulumi config rm`` would write, done on the file's
lines so that comments and the order of every other key are kept. The result is validated by
the same loader the program uses (:func:`caresync_dr.settings.load_settings`) before it is
written; an invalid result raises :class:`~caresync_dr.settings.SettingsError` and leaves the
file untouched. Writes are atomic (a temporary file renamed over the original).
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from caresync_dr.settings import (
    NAMESPACE,
    RetiringGeneration,
    Site,
    load_settings,
    read_stack_file,
    stack_file,
)


@dataclass(frozen=True)
class GenerationSettings:
    """The lifecycle settings of one stack file."""

    active_site: Site
    generation: int
    retiring: RetiringGeneration | None

    def describe(self) -> str:
        retiring = ("" if self.retiring is None else
                    f", dbRetiring {{generation: {self.retiring.generation}, "
                    f"role: {self.retiring.role}}}")
        return f"activeSite {self.active_site}, dbGeneration {self.generation}{retiring}"


def read_generation_settings(stack: str, project_dir: Path) -> GenerationSettings:
    values, region = read_stack_file(stack, project_dir)
    settings = load_settings(stack, values, region)
    return GenerationSettings(settings.active_site, settings.db_generation,
                              settings.db_retiring)


def _line(key: str) -> re.Pattern[str]:
    return re.compile(rf"^(?P<indent>[ \t]+){re.escape(NAMESPACE)}:{key}:.*(?:\n(?P=indent)"
                      rf"[ \t]+.*)*\n?", re.MULTILINE)


def render(text: str, wanted: GenerationSettings) -> str:
    """``text`` (a stack file) with the three settings set to ``wanted`` (``dbRetiring``
    removed when ``wanted.retiring`` is None)."""
    document = yaml.safe_load(text) or {}
    if not isinstance(document.get("config"), dict):
        raise ValueError("the stack file has no config mapping")
    indent_match = re.search(rf"^([ \t]+){re.escape(NAMESPACE)}:", text, re.MULTILINE)
    indent = indent_match.group(1) if indent_match else "  "
    values = {
        "activeSite": wanted.active_site,
        "dbGeneration": f'"{wanted.generation}"',
        "dbRetiring": None if wanted.retiring is None else
        f"{{generation: {wanted.retiring.generation}, role: {wanted.retiring.role}}}",
    }
    for key, value in values.items():
        pattern = _line(key)
        line = None if value is None else f"{indent}{NAMESPACE}:{key}: {value}\n"
        if pattern.search(text):
            match = pattern.search(text)
            assert match is not None
            text = text[:match.start()] + (line or "") + text[match.end():]
        elif line is not None:
            text = text if text.endswith("\n") else text + "\n"
            text += line
    return text


def write_generation_settings(stack: str, project_dir: Path,
                              wanted: GenerationSettings) -> bool:
    """Set the three settings in ``Pulumi.<stack>.yaml``; False when it already said so."""
    path = stack_file(stack, project_dir)
    old = path.read_text()
    new = render(old, wanted)
    if new == old:
        return False
    document = yaml.safe_load(new)
    config = document["config"]
    prefix = f"{NAMESPACE}:"
    values = {k[len(prefix):]: v for k, v in config.items() if k.startswith(prefix)}
    load_settings(stack, values, config.get("aws:region"))  # raises SettingsError: unchanged
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(new)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True
