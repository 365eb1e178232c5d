"""README's Configuration section names every setting by its environment variable."""

from __future__ import annotations

import re
from pathlib import Path

from graphpost.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def configuration_section() -> str:
    text = README.read_text()
    start = text.index("\n## Configuration\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_every_setting_is_documented() -> None:
    prefix = Settings.model_config.get("env_prefix", "")
    section = configuration_section()
    documented = set(re.findall(r"`(GRAPHPOST_[A-Z0-9_]+)`", section))
    expected = {f"{prefix}{name}".upper() for name in Settings.model_fields}
    assert expected, "Settings has no fields?"
    assert sorted(expected - documented) == [], "add these to README.md's Configuration table"
