"""Storage of a user's own, by URL scheme: registered in the process, or found through an entry point
of an installed distribution; real scans on it, read back with xarray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
import xarray as xr
import zarr
from bluesky import plans as bp
from ophyd.sim import det, motor1, motor2
from stand_ins import FrameCounter
from stock import assert_tensorstore_agrees, open_stream

from bluesky_zarr import ConfigurationError, ZarrWriter, open_run
from bluesky_zarr.storage import (
    ENTRY_POINT_GROUP,
    LocalStorage,
    Storage,
    register_storage,
    storage_schemes,
)


def directory_factory(root: Path) -> Any:
    """``scheme://<experiment>/<sub/dirs>`` -> a directory below ``root``, as a facility maps names."""

    def open_lab(url: str, storage_options: Mapping[str, Any] | None) -> Storage:
        if storage_options:
            raise ConfigurationError(f"{url}: this storage takes no storage_options")
        parts = urlsplit(url)
        return LocalStorage(root / parts.netloc / parts.path.lstrip("/"))

    return open_lab


def test_a_registered_scheme_works_in_a_writer_and_in_open_run(RE, tmp_path: Path) -> None:
    register_storage("testlab", directory_factory(tmp_path / "archive"))
    assert "testlab" in storage_schemes()
    writer = ZarrWriter("testlab://beamtime-7/raw")
    assert writer.directory == tmp_path / "archive" / "beamtime-7" / "raw"
    RE.subscribe(writer)
    (uid,) = RE(bp.grid_scan([FrameCounter(), det], motor1, -1, 1, 3, motor2, 0, 1, 2))
    store = tmp_path / "archive" / "beamtime-7" / "raw" / f"{uid}.zarr"
    ds = open_stream(store)
    assert ds["cam"].shape == (3, 2, 6, 4) and ds["written"].values.all()
    assert_tensorstore_agrees(store)
    tree = open_run(f"testlab://beamtime-7/raw/{uid}.zarr")
    np.testing.assert_array_equal(tree["primary"]["cam"].values, ds["cam"].values)


def test_a_factory_may_give_a_zarr_store(RE) -> None:
    stores: dict[str, zarr.storage.MemoryStore] = {}

    def in_memory(url: str, storage_options: Mapping[str, Any] | None) -> zarr.storage.MemoryStore:
        return stores.setdefault(urlsplit(url).netloc, zarr.storage.MemoryStore())

    register_storage("memlab", in_memory)
    RE.subscribe(ZarrWriter("memlab://scratch"))
    (uid,) = RE(bp.count([det], 3))
    ds = xr.open_zarr(stores["scratch"], group=f"{uid}.zarr/primary", consolidated=False, zarr_format=3)
    assert ds["det"].shape == (3,)


def test_a_storage_object_is_a_target_as_it_is(RE, tmp_path: Path) -> None:
    RE.subscribe(ZarrWriter(LocalStorage(tmp_path / "mine")))
    (uid,) = RE(bp.count([det], 2))
    assert open_stream(tmp_path / "mine" / f"{uid}.zarr")["det"].shape == (2,)


@pytest.mark.parametrize(
    ("scheme", "factory", "message"),
    [
        ("s3", lambda url, options: None, "'s3' is built in and cannot be replaced"),
        ("file", lambda url, options: None, "built in"),
        ("my lab", lambda url, options: None, "is not a URL scheme"),
        ("mylab://", lambda url, options: None, "is not a URL scheme"),
        ("okscheme", "not callable", "is not callable"),
    ],
)
def test_bad_registrations_are_refused(scheme: str, factory: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        register_storage(scheme, factory)


def test_an_unknown_scheme_says_how_to_plug_one_in(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ZarrWriter("nosuchlab://x/y")
    message = str(caught.value)
    assert message.startswith("'nosuchlab://x/y': the URL scheme 'nosuchlab' is not one known here (file, s3")
    assert "register_storage('nosuchlab', factory)" in message
    assert f"'{ENTRY_POINT_GROUP}' entry point named 'nosuchlab'" in message
    assert not (Path.cwd() / "nosuchlab:").exists()


def test_a_factory_that_gives_something_else_is_a_clear_error() -> None:
    register_storage("junklab", lambda url, options: str(url))
    with pytest.raises(
        ConfigurationError, match=r"gave 'junklab://a', which is neither a .*Storage nor a zarr"
    ):
        ZarrWriter("junklab://a")


# --- entry points: a real installed distribution, in a process of its own -----------------------------

PLUGIN = """
import os
from pathlib import Path
from urllib.parse import urlsplit

from bluesky_zarr.storage import LocalStorage


def open_mylab(url, storage_options):
    parts = urlsplit(url)
    return LocalStorage(Path(os.environ["MYLAB_ROOT"]) / parts.netloc / parts.path.lstrip("/"))
"""

SCAN = """
import json
import sys

from bluesky import RunEngine
from bluesky import plans as bp
from ophyd.sim import det, motor

from bluesky_zarr import ConfigurationError, ZarrWriter
from bluesky_zarr.storage import storage_schemes

RE = RunEngine({})
RE.subscribe(ZarrWriter("mylab://beamtime-9/"))
(uid,) = RE(bp.scan([det], motor, -1, 1, 5))
try:
    ZarrWriter("brokenlab://x")
except ConfigurationError as error:
    broken = str(error)
print(json.dumps({"uid": uid, "schemes": storage_schemes(), "broken": broken}))
RE.loop.call_soon_threadsafe(RE.loop.stop)
"""


def test_an_entry_point_of_an_installed_distribution_plugs_a_scheme_in(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist_info = site / "mylab_storage-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (site / "mylab_storage.py").write_text(PLUGIN)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: mylab-storage\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nmylab = mylab_storage:open_mylab\nbrokenlab = no_such_module:open_it\n"
    )
    env = {**os.environ, "MYLAB_ROOT": str(tmp_path / "root")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH", "")) if p)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCAN)], env=env, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"file", "s3", "mylab", "brokenlab"} <= set(result["schemes"])
    assert (
        "entry point 'brokenlab' (no_such_module:open_it) cannot be loaded: ModuleNotFoundError"
        in (result["broken"])
    )
    ds = open_stream(tmp_path / "root" / "beamtime-9" / f"{result['uid']}.zarr")
    assert ds["det"].shape == (5,) and ds["motor"].values.tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
