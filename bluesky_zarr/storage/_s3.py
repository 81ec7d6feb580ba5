"""The storage interface on an S3-compatible object store (AWS S3, MinIO, Ceph RGW, moto), through obstore.

Objects in a bucket are immutable: a PUT replaces an object whole, and a reader sees the old
object or the new one, never a part. So every object here is written whole, once it is complete:

- :meth:`S3Storage.put` is one PUT; :meth:`S3Storage.writer` spools the object locally and
  uploads it when the block ends (a multipart upload for a big one, which S3 shows only when it
  completes: a writer killed during it leaves no partial object).
- :meth:`S3Storage.grow` keeps the object in a local spool file; each
  :meth:`~bluesky_zarr.storage.GrowingObject.publish` uploads it whole under its key. A shard or a
  live Arrow stream thus costs one object, re-uploaded at each flush, however long the run.
- Every PUT is durable when it is acknowledged, so :meth:`S3Storage.sync` has nothing left to do.

Requests that fail for a passing reason (HTTP 5xx, a dropped connection, a timeout) are retried
by obstore with exponential backoff and jitter, bounded in count and time; a PUT is idempotent, so a
retried one neither loses nor doubles an object. What still fails becomes one
:class:`~bluesky_zarr.WriteError` that names the bucket and the key and never a credential.

Credentials come from the environment or the standard AWS configuration (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, instance or web-identity roles), or from
``storage_options``; they are held in memory only: never in ``repr``, in an error, in a log, or in
what ``pickle`` makes of this object (an unpickled storage takes them from the environment again).
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import logging
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from .._errors import BlueskyZarrError, ConfigurationError, StoreExistsError, UnsafePathError, WriteError
from ._base import Bytes, GrowingObject, Storage
from ._spool import Spool
from ._spooled import SpooledGrowing

__all__ = ["S3Storage"]

logger = logging.getLogger("bluesky_zarr")

_SECRET_OPTIONS = ("key", "secret", "token")
_OPTIONS = {
    "endpoint_url": "the server's URL, e.g. 'http://127.0.0.1:9000' for MinIO (default: "
    "AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL from the environment, as the AWS tools take it, else AWS)",
    "region": "the bucket's region (default: AWS_REGION, else us-east-1)",
    "key": "the access key id (default: the environment, AWS_ACCESS_KEY_ID)",
    "secret": "the secret access key (default: the environment, AWS_SECRET_ACCESS_KEY)",
    "token": "a session token (default: the environment, AWS_SESSION_TOKEN)",
    "anon": "True: unsigned requests, for a public bucket",
    "virtual_hosted_style": "True: bucket.host/key URLs instead of host/bucket/key",
    "max_retries": "how often a request that failed for a passing reason is tried again (default 8)",
    "retry_timeout": "seconds after which a request is no longer retried (default 120)",
    "init_backoff": "seconds before the first retry (default 0.1); doubled each time, with jitter",
    "max_backoff": "the longest wait between two retries, in seconds (default 10)",
    "timeout": "seconds one request may take (default 60)",
    "connect_timeout": "seconds to connect (default 10)",
    "multipart_bytes": "objects larger than this go up as a multipart upload (default 64 MiB)",
    "spool": "the local directory where growing objects wait for their upload (default: the system's)",
}
_DEFAULTS: dict[str, Any] = {
    "max_retries": 8,
    "retry_timeout": 120.0,
    "init_backoff": 0.1,
    "max_backoff": 10.0,
    "timeout": 60.0,
    "connect_timeout": 10.0,
    "multipart_bytes": 64 * 1024**2,
}
_PART_BYTES = 16 * 1024**2


class _Secrets:
    """Credentials given in ``storage_options``: shown as nothing, pickled as nothing."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def get(self, name: str) -> str | None:
        return self._values.get(name)

    def values(self) -> list[str]:
        return [v for v in self._values.values() if v]

    def __repr__(self) -> str:
        return "<credentials hidden>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Secrets, ({},))


def _split_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    bucket, prefix = parts.netloc, parts.path.strip("/")
    if not bucket or parts.query or parts.fragment:
        raise ConfigurationError(
            f"{url!r} is not of the form s3://bucket/prefix/; nothing was written. Give the bucket, and "
            "the prefix under which the runs go (credentials go in the environment, never in the URL)"
        )
    if "@" in bucket or ":" in bucket:
        raise ConfigurationError(
            f"{url.split('@')[-1]!r}: credentials or a port in an s3:// URL are not taken; put the server in "
            "storage_options={'endpoint_url': ...} and the credentials in the environment"
        )
    return bucket, prefix


class S3Storage(Storage):
    """Objects below ``prefix`` in ``bucket`` of an S3-compatible object store.

    Parameters
    ----------
    bucket
        The bucket; it must exist (this package never creates buckets).
    prefix
        The root's key prefix in the bucket (``""``: the bucket's top).
    storage_options
        ``endpoint_url``, ``region``, ``key``/``secret``/``token`` (better left to the
        environment), ``anon``, ``virtual_hosted_style``, the retry bounds ``max_retries``,
        ``retry_timeout``, ``init_backoff``, ``max_backoff``, the request timeouts ``timeout``,
        ``connect_timeout``, and ``spool``, the local directory where growing objects wait.
    """

    def __init__(
        self, bucket: str, prefix: str = "", storage_options: Mapping[str, Any] | None = None
    ) -> None:
        options = dict(storage_options or {})
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint and "endpoint_url" not in options:
            options["endpoint_url"] = endpoint
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            known = "; ".join(f"{k}: {v}" for k, v in _OPTIONS.items())
            raise ConfigurationError(
                f"s3://{bucket}/{prefix}: unknown storage_options {unknown}; nothing was written. "
                f"The options are {known}"
            )
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._secrets = _Secrets({k: str(options.pop(k)) for k in _SECRET_OPTIONS if options.get(k)})
        self.options: dict[str, Any] = {**_DEFAULTS, **options}
        """every option but the credentials"""
        self._client: Any = None
        self._spooling: Spool | None = None
        """where every object goes once an upload failed for good"""

    @classmethod
    def from_url(cls, url: str, storage_options: Mapping[str, Any] | None = None) -> S3Storage:
        """The storage of ``s3://bucket/prefix/``."""
        bucket, prefix = _split_url(url)
        return cls(bucket, prefix, storage_options)

    def __repr__(self) -> str:
        endpoint = self.options.get("endpoint_url")
        return f"S3Storage({self.location!r}" + (f", endpoint_url={endpoint!r})" if endpoint else ")")

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None, "_spooling": None}  # _Secrets pickles as nothing

    # --- the client -------------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The obstore ``S3Store`` of the bucket (made at first use)."""
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self, prefix: str | None = None) -> Any:
        from obstore.store import S3Store

        o = self.options
        config: Any = {}
        client: Any = {
            "timeout": timedelta(seconds=float(o["timeout"])),
            "connect_timeout": timedelta(seconds=float(o["connect_timeout"])),
        }
        endpoint = o.get("endpoint_url")
        if endpoint:
            config["endpoint"] = str(endpoint)
            client["allow_http"] = str(endpoint).startswith("http://")
            config["virtual_hosted_style_request"] = bool(o.get("virtual_hosted_style", False))
        elif o.get("virtual_hosted_style") is not None:
            config["virtual_hosted_style_request"] = bool(o["virtual_hosted_style"])
        region = o.get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        config["region"] = region or "us-east-1"
        if o.get("anon"):
            config["skip_signature"] = True
        for option, name in (
            ("key", "access_key_id"),
            ("secret", "secret_access_key"),
            ("token", "session_token"),
        ):
            value = self._secrets.get(option)
            if value:
                config[name] = value
        retry: Any = {
            "max_retries": int(o["max_retries"]),
            "retry_timeout": timedelta(seconds=float(o["retry_timeout"])),
            "backoff": {
                "init_backoff": timedelta(seconds=float(o["init_backoff"])),
                "max_backoff": timedelta(seconds=float(o["max_backoff"])),
                "base": 2,
            },
        }
        try:
            return S3Store(
                self.bucket, prefix=prefix, config=config, client_options=client, retry_config=retry
            )
        except Exception as err:
            raise ConfigurationError(
                f"{self.location}: the S3 client cannot be made: {self._scrub(str(err))}; "
                "check storage_options"
            ) from None

    def _scrub(self, text: str) -> str:
        """``text`` without any credential in it."""
        for secret in self._secrets.values():
            text = text.replace(secret, "***")
        for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            value = os.environ.get(name)
            if value:
                text = text.replace(value, "***")
        return text

    @contextlib.contextmanager
    def _wrapped(self, key: str, action: str = "write") -> Iterator[None]:
        """The one place an obstore error becomes a :class:`WriteError` naming bucket and key."""
        try:
            yield
        except BlueskyZarrError:
            raise
        except Exception as err:
            cause = self._scrub(str(err)).strip().splitlines()
            reason = cause[0] if cause else type(err).__name__
            if len(reason) > 400:
                reason = reason[:400] + "..."
            hint = _hint(err)
            raise WriteError(
                errno.EIO, f"cannot {action} {self.describe(key)} (bucket {self.bucket!r}): {reason}{hint}"
            ) from None  # the original may carry request details; what matters is said above

    # --- names ------------------------------------------------------------------------------------

    def _key(self, key: str) -> str:
        return "/".join(p for p in (self.prefix, key.strip("/")) if p)

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def child(self, name: str) -> S3Storage:
        parts = PurePosixPath(name).parts
        if not name or name.startswith("/") or ".." in parts or "\\" in name:
            raise UnsafePathError(f"{name!r} is not a name below {self.location}; choose a relative name")
        child = S3Storage.__new__(S3Storage)
        child.__dict__.update(self.__dict__)
        child.prefix = self._key(name)
        return child

    def artifact(self, key: str = "") -> str:
        return self.describe(key) if key else self.location

    def zarr_store(self) -> Any:
        """A read-only zarr ``ObjectStore`` of the root."""
        from zarr.storage import ObjectStore

        return ObjectStore(self._make_client(self.prefix or None), read_only=True)

    # --- the root ---------------------------------------------------------------------------------

    def _objects(self, key: str) -> list[str]:
        """Every object at ``key`` or below it (full keys)."""
        import obstore

        full = self._key(key)
        found: list[str] = []
        with self._wrapped(key, "list"):
            if full and self._head(full) is not None:
                found.append(full)
            for batch in obstore.list(self.client, f"{full}/" if full else None, chunk_size=1000):
                found.extend(meta["path"] for meta in batch)
        return found

    def _head(self, full: str) -> Any:
        import obstore
        from obstore.exceptions import NotFoundError

        try:
            return obstore.head(self.client, full)
        except (NotFoundError, FileNotFoundError):
            return None

    def create(self, *, overwrite: bool = False, exist_ok: bool = False) -> None:
        import obstore

        with self._wrapped("", "list"):
            listing = obstore.list_with_delimiter(self.client, f"{self.prefix}/" if self.prefix else None)
        there = bool(listing["objects"] or listing["common_prefixes"])
        if there and overwrite:
            self.delete("")
        elif there and not exist_ok:
            raise StoreExistsError(
                f"{self.location} exists already (another writer made it meanwhile?); nothing was written "
                "to it: choose another file_prefix, or pass overwrite=True to replace it"
            )

    def exists(self, key: str = "") -> bool:
        import obstore

        full = self._key(key)
        with self._wrapped(key, "list"):
            if full and self._head(full) is not None:
                return True
            listing = obstore.list_with_delimiter(self.client, f"{full}/" if full else None)
        return bool(listing["objects"] or listing["common_prefixes"])

    def list(self, prefix: str = "") -> list[str]:
        import obstore

        full = self._key(prefix)
        with self._wrapped(prefix, "list"):
            listing = obstore.list_with_delimiter(self.client, f"{full}/" if full else None)
        names = [p.rstrip("/").rsplit("/", 1)[-1] for p in listing["common_prefixes"]]
        names += [meta["path"].rsplit("/", 1)[-1] for meta in listing["objects"]]
        return sorted(set(names))

    def delete(self, key: str) -> None:
        import obstore

        objects = self._objects(key)
        with self._wrapped(key, "remove"):
            for i in range(0, len(objects), 1000):
                obstore.delete(self.client, objects[i : i + 1000])

    # --- whole objects ----------------------------------------------------------------------------

    def put(self, key: str, data: Bytes, *, durable: bool = False) -> None:
        import obstore

        if self._spooling is not None:
            self._spooling.put(key, data)
            return
        try:
            with self._wrapped(key):
                obstore.put(self.client, self._key(key), memoryview(data).cast("B"), use_multipart=False)
        except WriteError as err:
            self._spool_from(key, data, err)

    def upload(self, key: str, file: BinaryIO) -> None:
        """Upload a whole file-like object from its start: one PUT, or a multipart upload above
        ``multipart_bytes`` (which S3 shows only once it completes). Once an upload failed for
        good, the object goes to the spool instead."""
        if self._spooling is not None:
            self._spooling.put(key, file)
            return
        try:
            self.upload_now(key, file)
        except WriteError as err:
            self._spool_from(key, file, err)

    @property
    def spool_directory(self) -> Path:
        """Where this root's objects go when the bucket cannot take them."""
        base = Path(self.options.get("spool") or Path(tempfile.gettempdir()) / "bluesky-zarr-spool")
        return base / self.bucket / self.prefix

    def _spool_from(self, key: str, data: Bytes | BinaryIO, err: WriteError) -> None:
        """Keep ``data`` and everything after it in the spool; raise ``err``, which says so."""
        options = {k: v for k, v in self.options.items() if k not in _SECRET_OPTIONS}
        try:
            self._spooling = Spool(self.spool_directory, self.bucket, self.prefix, options)
            self._spooling.put(key, data)
        except OSError as spool_err:
            self._spooling = None
            err.add_note(f"and it could not be kept in the spool {self.spool_directory}: {spool_err}")
            raise err from None
        logger.error("%s: kept in the spool %s from now on", err, self.spool_directory)
        err.add_note(
            f"{self.describe(key)} and every object written after it are kept in the spool "
            f"{self.spool_directory}; once the bucket is reachable, "
            f"bluesky_zarr.finalize_spool({str(self.spool_directory)!r}) uploads them"
        )
        raise err

    def get_spooled(self, key: str) -> bytes | None:
        return self._spooling.get(key) if self._spooling is not None else None

    def upload_now(self, key: str, file: BinaryIO) -> None:
        """Upload ``file`` to ``key`` now, or raise."""
        import obstore

        size = file.seek(0, io.SEEK_END)
        file.seek(0)
        multipart = size > int(self.options["multipart_bytes"])
        with self._wrapped(key):
            if multipart:
                obstore.put(self.client, self._key(key), file, use_multipart=True, chunk_size=_PART_BYTES)
            else:
                obstore.put(self.client, self._key(key), file.read(), use_multipart=False)

    def size(self, key: str) -> int:
        spooled = self.get_spooled(key)
        if spooled is not None:
            return len(spooled)
        with self._wrapped(key, "read"):
            meta = self._head(self._key(key))
        return int(meta["size"]) if meta is not None else 0

    def get(self, key: str) -> bytes | None:
        import obstore
        from obstore.exceptions import NotFoundError

        spooled = self.get_spooled(key)
        if spooled is not None:
            return spooled
        with self._wrapped(key, "read"):
            try:
                return bytes(obstore.get(self.client, self._key(key)).bytes())
            except (NotFoundError, FileNotFoundError):
                return None

    def spool_file(self) -> BinaryIO:
        """A local file for an object that waits for its upload (gone when closed)."""
        spool = self.options.get("spool")
        if spool:
            Path(spool).mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryFile(dir=spool, prefix="bluesky-zarr-")

    @contextlib.contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        with self.spool_file() as file:
            yield file
            self.upload(key, file)

    @contextlib.contextmanager
    def reader(self, key: str) -> Iterator[BinaryIO]:
        data = self.get(key)
        if data is None:
            raise WriteError(errno.ENOENT, f"cannot read {self.describe(key)}: no such object")
        yield io.BytesIO(data)

    def rename(self, key: str, new_key: str) -> None:
        import obstore

        full, new = self._key(key), self._key(new_key)
        for old in self._objects(key):
            target = new + old[len(full) :]
            with self._wrapped(key, f"move to {self.describe(new_key)}:"):
                obstore.rename(self.client, old, target)

    def abort_incomplete_uploads(self, older_than: float = 3600.0) -> builtins.list[str]:
        """Abort the multipart uploads below the root begun more than ``older_than`` seconds ago
        (a writer killed during one leaves it: invisible, but stored, and billed); returns their
        keys. Needs boto3, which obstore does not offer this through."""
        try:
            import boto3
        except ImportError as err:
            raise ConfigurationError(
                "aborting incomplete uploads needs boto3: pip install boto3 (or give the bucket a "
                "lifecycle rule, AbortIncompleteMultipartUpload, which does it by itself)"
            ) from err
        o = self.options
        client = boto3.client(
            "s3",
            endpoint_url=o.get("endpoint_url"),
            region_name=o.get("region") or os.environ.get("AWS_REGION") or "us-east-1",
            aws_access_key_id=self._secrets.get("key"),
            aws_secret_access_key=self._secrets.get("secret"),
            aws_session_token=self._secrets.get("token"),
        )
        prefix = f"{self.prefix}/" if self.prefix else ""
        aborted: builtins.list[str] = []
        with self._wrapped("", "abort the incomplete uploads below"):
            paginator = client.get_paginator("list_multipart_uploads")
            now = time.time()
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for upload in page.get("Uploads", []):
                    if now - upload["Initiated"].timestamp() < older_than:
                        continue
                    client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    aborted.append(f"s3://{self.bucket}/{upload['Key']}")
        return aborted

    # --- growing objects and durability -----------------------------------------------------------

    def grow(self, key: str, *, hidden: bool = True, reopen: bool = False) -> GrowingObject:
        return SpooledGrowing(self, key, hidden=hidden, reopen=reopen)

    def sync(self) -> None:
        """Nothing to do: an object is durable once its PUT is acknowledged."""


def _hint(err: BaseException) -> str:
    text = str(err)
    if "NoSuchBucket" in text:
        return "; the bucket does not exist: create it first (this package never creates buckets)"
    if any(word in text for word in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403")):
        return "; the credentials were refused: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
    return "; everything uploaded before stays readable"
