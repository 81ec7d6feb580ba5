"""Keep Channel Access on 127.0.0.1: environment, free ports, and the IOC as a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

from .._errors import DeviceTimeoutError

__all__ = ["LabIOCProcess", "free_port", "loopback_environment", "start_lab_ioc", "use_loopback"]

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (Channel Access uses both on one number)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((LOOPBACK, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((LOOPBACK, port))
                except OSError:
                    continue
        return port
    raise OSError("no port is free for both TCP and UDP on 127.0.0.1")


def loopback_environment(server_port: int, repeater_port: int) -> dict[str, str]:
    """The EPICS variables that confine servers, clients, beacons and the repeater to 127.0.0.1.

    Parameters
    ----------
    server_port
        ``EPICS_CA_SERVER_PORT``: where the IOC listens and clients search.
    repeater_port
        ``EPICS_CA_REPEATER_PORT`` and ``EPICS_CAS_BEACON_PORT``: where beacons go.
    """
    return {
        "EPICS_CA_AUTO_ADDR_LIST": "NO",
        "EPICS_CA_ADDR_LIST": LOOPBACK,
        "EPICS_CAS_INTF_ADDR_LIST": LOOPBACK,
        "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
        "EPICS_CAS_BEACON_ADDR_LIST": LOOPBACK,
        "EPICS_CA_SERVER_PORT": str(server_port),
        "EPICS_CA_REPEATER_PORT": str(repeater_port),
        "EPICS_CAS_BEACON_PORT": str(repeater_port),
        "EPICS_CA_MAX_ARRAY_BYTES": str(64 * 1024 * 1024),
    }


def use_loopback(env: Mapping[str, str]) -> None:
    """Make this process's Channel Access clients (ophyd's caproto layer) use ``env``, loopback only.

    Call it before the first EPICS signal is made. It sets the variables in ``os.environ``,
    selects ophyd's caproto control layer, and points caproto's repeater registration at
    127.0.0.1 (caproto would otherwise address it to the host's first non-loopback address).
    """
    os.environ.update(env)
    import caproto
    import ophyd

    caproto.get_local_address = lambda: LOOPBACK
    ophyd.set_cl("caproto")


@dataclass
class LabIOCProcess:
    """A running ``bluesky_zarr.devices.iocs.lab`` subprocess."""

    process: subprocess.Popen[bytes]
    prefix: str
    env: dict[str, str] = field(default_factory=dict)
    repeater: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None

    def stop(self) -> None:
        """Terminate the IOC and its repeater (it is safe to call twice)."""
        for proc in (self.process, self.repeater):
            if proc is None:
                continue
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self.log is not None:
            self.log.close()
            self.log = None


def start_lab_ioc(
    prefix: str,
    env: Mapping[str, str],
    *,
    args: Sequence[str] = (),
    timeout: float = 20.0,
) -> LabIOCProcess:
    """Start the lab IOC (and a loopback-only repeater) as subprocesses with ``env``; wait until it serves.

    ``env`` comes from :func:`loopback_environment`.

    Parameters
    ----------
    prefix
        PV prefix, e.g. ``"BZTEST:"``.
    env
        EPICS variables; the IOC only listens on the interfaces they name.
    args
        Extra command-line arguments (``--height 16 --width 16 --tuning-rate 1e6`` ...).
    timeout
        Seconds to wait for the IOC to answer a search.

    Raises
    ------
    DeviceTimeoutError
        The IOC did not answer within ``timeout``; the message has its output.
    """
    full_env = dict(os.environ)
    full_env.update(env)
    repeater = subprocess.Popen(
        [sys.executable, "-m", "bluesky_zarr.devices.iocs.repeater"],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    command = [sys.executable, "-m", "bluesky_zarr.devices.iocs.lab", "--prefix", prefix, "--quiet", *args]
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by LabIOCProcess.stop; a full pipe would stall the IOC
    process = subprocess.Popen(command, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    ioc = LabIOCProcess(process=process, prefix=prefix, env=dict(env), repeater=repeater, log=log)
    deadline = time.monotonic() + timeout
    port = int(env["EPICS_CA_SERVER_PORT"])
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            output = log.read().decode(errors="replace")
            ioc.stop()
            raise DeviceTimeoutError(f"the lab IOC {prefix!r} exited with {process.returncode}:\n{output}")
        if _tcp_listening(port):
            return ioc
        time.sleep(0.1)
    ioc.stop()
    raise DeviceTimeoutError(f"the lab IOC {prefix!r} did not listen on 127.0.0.1:{port} within {timeout} s.")


def _tcp_listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        try:
            s.connect((LOOPBACK, port))
        except OSError:
            return False
        return True
