"""The lock file (requirements.lock, which .ci/run installs from) is in step with pyproject.toml: every
dependency and every extra's requirement is pinned there, at a version its specifier allows.

Regenerate the lock after changing a requirement (pip-tools in a scratch venv), from the repository
root, then make the hand edits the lock's header lists; the command is also in the header:
    pip-compile --all-extras --no-emit-find-links --no-emit-index-url --output-file=requirements.lock \\
        --strip-extras --unsafe-package=crime-pipeline --unsafe-package=pip --unsafe-package=setuptools pyproject.toml
"""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from crime_pipeline_tests.conftest import REPO

LOCK = REPO / "requirements.lock"
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")


def pins(text: str) -> dict[str, Version]:
    """name -> pinned version; every requirement line of a lock is `name==version`."""
    found: dict[str, Version] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = PIN.match(line)
        assert match, f"not a plain pin: {line!r}"
        name = canonicalize_name(match.group(1))
        assert name not in found, f"{name} is pinned twice"
        found[name] = Version(match.group(2))
    return found


def requirements(project: dict) -> list[tuple[str, Requirement]]:
    """(where, requirement) for the dependencies and every extra, the project's own extras left out."""
    listed = [("dependencies", Requirement(r)) for r in project["dependencies"]]
    listed += [
        (f"extra {extra}", Requirement(r)) for extra, reqs in project["optional-dependencies"].items() for r in reqs
    ]
    return [(where, r) for where, r in listed if canonicalize_name(r.name) != canonicalize_name(project["name"])]


def out_of_step(project: dict, pinned: dict[str, Version]) -> list[str]:
    problems = []
    for where, requirement in requirements(project):
        if requirement.marker and not requirement.marker.evaluate():
            continue  # not for this platform or Python
        version = pinned.get(canonicalize_name(requirement.name))
        if version is None:
            problems.append(f"{requirement} ({where}) is not in the lock")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement} ({where}) is pinned at {version} in the lock")
    return problems


def test_every_requirement_of_pyproject_is_pinned_in_the_lock_at_an_allowed_version():
    assert out_of_step(PROJECT, pins(LOCK.read_text())) == []


def test_the_lock_pins_the_cpu_torch_and_not_the_project_itself():
    pinned = pins(LOCK.read_text())
    assert "torch==2.13.0" in PROJECT["dependencies"]
    assert pinned["torch"].public == "2.13.0" and pinned["torch"].local in (None, "cpu")
    assert not any(name.startswith("nvidia-") for name in pinned)  # a CUDA build's companions
    assert canonicalize_name(PROJECT["name"]) not in pinned  # .ci/run installs the project itself, without deps


def test_a_requirement_missing_from_the_lock_or_outside_its_pin_is_named():
    project = {
        "name": "crime_pipeline",
        "dependencies": ["pandas>=2.2", "torch==2.13.0", "numpy>=1.26"],
        "optional-dependencies": {
            "test": ["pytest>=8", "crime_pipeline[s3]"],
            "s3": ["s3fs>=2025.3.0"],
            "win": ["pywin32>=300; sys_platform == 'win32'"],
        },
    }
    pinned = pins("pandas==2.1.4\n    # via crime-pipeline\ntorch==2.13.0+cpu\nnumpy==2.0.0\npytest==8.3.0\n")
    assert out_of_step(project, pinned) == [
        "pandas>=2.2 (dependencies) is pinned at 2.1.4 in the lock",
        "s3fs>=2025.3.0 (extra s3) is not in the lock",
    ]
