"""Hostile city profiles cost bounded work: alias bombs, deep nesting and huge files fail fast, in one sentence."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from crime_pipeline.lib.cities.profiles import (
    BUILTIN_FOLDER,
    MAX_PROFILE_BYTES,
    MAX_PROFILE_VALUES,
    ProfileError,
    load_profile,
    profiles,
)


def _alias_bomb(levels: int = 9) -> str:
    """'Billion laughs': each level is nine aliases of the one before, 9**levels strings once expanded."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels + 1):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _hostile_buffalo(tmp_path: Path, tail: str) -> Path:
    """Buffalo's own profile with `tail` appended (a later key replaces an earlier one)."""
    path = tmp_path / "buffalo.yaml"
    path.write_text((BUILTIN_FOLDER / "buffalo.yaml").read_text(encoding="utf-8") + "\n" + tail, encoding="utf-8")
    return path


def _refusal(path: Path, within: float = 1.0) -> str:
    started = time.monotonic()
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert time.monotonic() - started < within
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message and len(message) < 400, message
    return message


def test_an_alias_bomb_in_a_profile_is_refused_in_under_a_second(tmp_path):
    # A 1 KB file that expands to 387 million strings: it took 46 s and 3.2 GB before the bound.
    path = _hostile_buffalo(tmp_path, _alias_bomb(9) + "signature: *l9\n")
    assert path.stat().st_size < 8_000
    message = _refusal(path)
    assert f"more than {MAX_PROFILE_VALUES:,} values once its aliases are expanded" in message, message


def test_a_recursive_alias_is_refused(tmp_path):
    path = _hostile_buffalo(tmp_path, "disguises: &loop [*loop]\n")
    assert "an alias that contains itself" in _refusal(path)


def test_deep_nesting_is_refused_without_a_traceback(tmp_path):
    path = _hostile_buffalo(tmp_path, "disguises: " + "[" * 100_000 + "\n")
    assert "not valid YAML" in _refusal(path)


def test_a_profile_over_the_size_limit_is_refused_before_parsing(tmp_path):
    path = _hostile_buffalo(tmp_path, "# " + "x" * MAX_PROFILE_BYTES + "\n")
    message = _refusal(path)
    assert f"over the {MAX_PROFILE_BYTES:,}-byte limit for a city profile" in message, message


def test_a_long_bad_value_is_shown_shortened_without_building_its_whole_text(tmp_path):
    # 500 aliases of a 1,000-item list: small once parsed, 2.5 MB were its repr built in full.
    items = "[" + ", ".join(["42"] * 1000) + "]"
    path = _hostile_buffalo(tmp_path, f"x: &big {items}\ncenter: [" + ", ".join(["*big"] * 40) + "]\n")
    message = _refusal(path)
    assert "field 'center'" in message and "..." in message, message


def test_aliases_within_the_bound_still_work(tmp_path):
    text = (BUILTIN_FOLDER / "buffalo.yaml").read_text(encoding="utf-8")
    path = tmp_path / "buffalo.yaml"
    path.write_text(text.replace("date_formats:", "date_formats: &formats", 1) + "date_formats: *formats\n", "utf-8")
    assert load_profile(path).date_formats == load_profile(BUILTIN_FOLDER / "buffalo.yaml").date_formats


def test_one_hostile_user_profile_fails_every_command_fast(tmp_path, monkeypatch):
    _hostile_buffalo(tmp_path, _alias_bomb(9) + "disguises: *l9\n")
    monkeypatch.setenv("CRIME_PIPELINE_CITIES", str(tmp_path))
    started = time.monotonic()
    with pytest.raises(ProfileError, match="once its aliases are expanded"):
        profiles(tmp_path / "no_lake")
    assert time.monotonic() - started < 1.0
