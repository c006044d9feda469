"""The store: every file another host must see (landing zone, Data Docs, reports, the
Evidently workspace) is written and read here.

A location is a local path (or `file://` URL) or any fsspec URL: `s3://bucket/key`,
`gs://...`; MinIO and other S3-compatible stores through `FSSPEC_S3_ENDPOINT_URL`, with
the credentials of the standard `AWS_*` variables.

- Writes are atomic: a file appears whole or not at all (local: a temporary file, then
  `os.replace`; remote: a temporary key next to it, then a move), and a failed write keeps
  the earlier version.
- `put_folder` publishes a multi-file site, the page that gets linked last.
- A store that is down or refuses the credentials raises `StoreError`, which names the
  location (without secrets) and the reason: the task fails and Airflow retries it.
  A missing file is not a store failure: readers get `FileNotFoundError`.
"""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from nightscore.config import redact_url
from nightscore.errors import InfrastructureError

_SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# Errors of the network stacks under fsspec that mean "the store cannot be reached",
# by module, so that none of them has to be imported (or installed) to be recognised.
_NETWORK_MODULES = ("botocore.", "aiobotocore.", "aiohttp.", "google.auth.", "urllib3.")


class StoreError(InfrastructureError):
    """The store is unreachable, or refuses the credentials or the operation."""

    def __init__(self, message: str) -> None:
        super().__init__("store", message)


def _local(location: str) -> Path | None:
    """The local path of a location, or None for a remote one."""
    parts = urlsplit(location)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if not parts.scheme or len(parts.scheme) == 1:  # a plain path (C:\ on Windows)
        return Path(location)
    return None


def apply_env() -> None:
    """Apply the `FSSPEC_<PROTOCOL>_<OPTION>` variables as they are now.

    fsspec reads them only once, when it is first imported, and `import airflow.sdk`
    imports it: before nightscore loads `.env`, so without this FSSPEC_S3_ENDPOINT_URL set
    there would be ignored. Code that opens the store through fsspec itself (Evidently's
    workspace) calls it first.
    """
    from fsspec.config import conf, set_conf_env

    set_conf_env(conf)


def _remote(location: str) -> tuple[Any, str]:
    """The fsspec filesystem of a remote location, and the location's path in it. Each
    call sees the store as it is now, not as a listing cached by an earlier call saw it."""
    import fsspec

    apply_env()
    fs, _, paths = fsspec.get_fs_token_paths(location)
    fs.invalidate_cache(paths[0])
    return fs, paths[0]


def _scrub(text: str) -> str:
    for variable in _SECRET_VARIABLES:
        secret = os.environ.get(variable)
        if secret:
            text = text.replace(secret, "***")
    return redact_url(text)


def _reason(exc: BaseException) -> str | None:
    """Why the store failed, or None when `exc` is no store failure."""
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, NotADirectoryError)):
        return None  # what is (not) there, not how the store is
    if isinstance(exc, PermissionError):
        return f"access denied ({exc})"
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return f"cannot connect ({exc})"
    name, module = type(exc).__name__, type(exc).__module__ + "."
    if module.startswith(_NETWORK_MODULES):
        what = "no usable credentials" if "Credentials" in name else "cannot connect"
        return f"{what} ({name}: {exc})"
    if isinstance(exc, OSError):
        return str(exc) or type(exc).__name__
    return None


@contextlib.contextmanager
def _failures(action: str, location: str) -> Iterator[None]:
    """Turn a store failure during `action` on `location` into a `StoreError`."""
    try:
        yield
    except StoreError:
        raise
    except Exception as exc:
        reason = _reason(exc)
        if reason is None:
            raise
        raise StoreError(_scrub(f"cannot {action} {location}: {reason}")) from None


def _partial_name(name: str) -> str:
    """A file's name while it is written: hidden, unique, next to where it goes."""
    return f".{name}.{uuid.uuid4().hex[:12]}.partial"


@contextlib.contextmanager
def open_write(location: str) -> Iterator[IO[bytes]]:
    """A binary file to write `location` through: it appears, whole, only when the block
    ends without an exception; otherwise the earlier version (if any) stays."""
    local = _local(location)
    with _failures("write", location):
        if local is not None:
            local.parent.mkdir(parents=True, exist_ok=True)
            partial = local.with_name(_partial_name(local.name))
            try:
                with partial.open("xb") as file:
                    yield file
                os.replace(partial, local)
            finally:
                partial.unlink(missing_ok=True)
            return
        fs, path = _remote(location)
        parent, _, name = path.rpartition("/")
        temporary = f"{parent}/{_partial_name(name)}"
        buffer = io.BytesIO()
        yield buffer
        try:
            fs.pipe_file(temporary, buffer.getvalue())
            fs.mv(temporary, path)
        except BaseException:
            with contextlib.suppress(Exception):
                fs.rm_file(temporary)
            raise


def write_bytes(location: str, data: bytes) -> None:
    """Write `data` to `location` atomically (see `open_write`)."""
    with open_write(location) as file:
        file.write(data)


def write_text(location: str, text: str) -> None:
    """Write `text` (UTF-8) to `location` atomically."""
    write_bytes(location, text.encode("utf-8"))


def read_bytes(location: str) -> bytes:
    """The file's bytes; `FileNotFoundError` when there is none."""
    local = _local(location)
    with _failures("read", location):
        if local is not None:
            return local.read_bytes()
        fs, path = _remote(location)
        return fs.cat_file(path)


def size(location: str) -> int:
    """The file's size in bytes, without reading it; `FileNotFoundError` when there is none."""
    local = _local(location)
    with _failures("check", location):
        if local is not None:
            if local.is_dir():
                raise IsADirectoryError(f"{location} is a folder")
            return local.stat().st_size
        fs, path = _remote(location)
        return int(fs.size(path))


@contextlib.contextmanager
def open_read(location: str) -> Iterator[IO[bytes]]:
    """The file as a binary stream, read in chunks (remote stores included)."""
    local = _local(location)
    with _failures("read", location):
        if local is not None:
            with local.open("rb") as stream:
                yield stream
            return
        fs, path = _remote(location)
        with fs.open(path, "rb") as stream:
            # fsspec's remote files have no `readline(size)`: a standard buffered reader
            # over them gives the bounded line reads the batch parser relies on.
            yield io.BufferedReader(stream, buffer_size=1 << 20)


def read_text(location: str) -> str:
    """The file's text (UTF-8)."""
    return read_bytes(location).decode("utf-8")


def exists(location: str) -> bool:
    """Whether a file or folder is at `location`."""
    local = _local(location)
    with _failures("check", location):
        if local is not None:
            return local.exists()
        fs, path = _remote(location)
        return bool(fs.exists(path))


def remove(location: str) -> None:
    """Remove the file or folder (with what it holds) at `location`; nothing there is fine."""
    local = _local(location)
    with _failures("remove", location):
        if local is not None:
            if local.is_dir():
                import shutil

                shutil.rmtree(local)
            else:
                local.unlink(missing_ok=True)
            return
        fs, path = _remote(location)
        if fs.exists(path):
            fs.rm(path, recursive=True)


def list_files(location: str) -> list[str]:
    """The files below the folder `location` (relative paths, sorted); none when there is
    no such folder. Files still being written (hidden `.partial` names) are left out."""
    with _failures("list", location):
        names = _listing(location.rstrip("/"))
    return sorted(n for n in names if not n.rpartition("/")[2].startswith("."))


def _listing(location: str) -> set[str]:
    """The files below a folder, as paths relative to it."""
    local = _local(location)
    if local is not None:
        return {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
    fs, path = _remote(location)
    if not fs.exists(path):
        return set()
    return {f[len(path) + 1 :] for f in fs.find(path) if f.startswith(path + "/")}


def put_folder(local_dir: str | Path, location: str, linked: str = "index.html") -> str:
    """Publish the files below `local_dir` as the folder `location`; returns the location
    of `linked`, the page links point at.

    Every file is written atomically, `linked` last, so that a link never opens a
    half-written site; then the files an earlier version had and this one has not are
    removed.
    """
    source = Path(local_dir)
    files = sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())
    if linked not in files:
        raise ValueError(f"{source} has no {linked}")
    base = location.rstrip("/")
    for name in [*(f for f in files if f != linked), linked]:
        write_bytes(f"{base}/{name}", (source / name).read_bytes())
    with _failures("list", location):
        stale = _listing(base) - set(files)
    for name in sorted(stale):
        remove(f"{base}/{name}")
    return f"{base}/{linked}"
