"""Shared fixtures: a real RunEngine, document recording, killed writer processes and tmpfs mounts."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from bluesky import RunEngine
from engines import run_engine
from processes import kill_after_flush
from s3 import KEY_ID, REGION, SECRET, make_bucket, moto_server


@pytest.fixture
def RE() -> Iterator[RunEngine]:
    with run_engine() as engine:
        yield engine


@pytest.fixture
def record(RE: RunEngine) -> list[tuple[str, Any]]:
    """Every document the RunEngine emits, in order."""
    documents: list[tuple[str, Any]] = []
    RE.subscribe(lambda name, doc: documents.append((name, doc)))
    return documents


@pytest.fixture(scope="session")
def killed_runs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """The directory of a run (file prefix ``crash``) whose writer process was SIGKILLed mid-scan,
    made once per format and session (see ``processes.kill_after_flush``)."""
    made: dict[str, Path] = {}

    def run(fmt: str) -> Path:
        if fmt not in made:
            directory = tmp_path_factory.mktemp(f"killed-{fmt}")
            kill_after_flush(directory, fmt)
            made[fmt] = directory
        return made[fmt]

    return run


@pytest.fixture
def killed(killed_runs: Callable[[str], Path], tmp_path: Path) -> Callable[[str], Path]:
    """A copy, this test's own, of the killed run's directory for a format."""

    def copy(fmt: str) -> Path:
        return Path(shutil.copytree(killed_runs(fmt), tmp_path / f"killed-{fmt}"))

    return copy


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str, str], Path]]:
    """Real tmpfs mounts, ``tmpfs(name, options)``: a disk that fills up (``size=1m``), a read-only
    one (``ro``). Needs the right to mount; skipped without it."""
    mounts: list[Path] = []

    def mount(name: str, options: str) -> Path:
        path = tmp_path / name
        path.mkdir()
        made = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, check=False
        )
        if made.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
        mounts.append(path)
        return path

    try:
        yield mount
    finally:
        for path in mounts:
            subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 server (moto) on 127.0.0.1, one for the session; its endpoint URL."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test credentials in the environment, where a facility's writer finds its own."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_REGION", REGION)
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def bucket(s3_endpoint: str, s3_credentials: None) -> str:
    """A new, empty bucket of the test server (its name)."""
    return make_bucket(s3_endpoint)
