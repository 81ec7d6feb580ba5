"""caproto's Channel Access repeater, bound to 127.0.0.1 instead of every interface.

``python -m bluesky_zarr.devices.iocs.repeater`` listens on ``127.0.0.1:$EPICS_CA_REPEATER_PORT``.
"""

from caproto.sync.repeater import run

if __name__ == "__main__":
    run(host="127.0.0.1")
