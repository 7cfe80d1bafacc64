"""Datasets on demand: MNIST, Fashion-MNIST, KMNIST and CIFAR-10, downloaded on first use,
verified by SHA-256 and cached in the user's data folder.

    ds = load_dataset("mnist")                  # downloads the first time, then reads the cache
    fetch_dataset("cifar10", progress=show, cancel=stop_event)   # fetch ahead
    cache_state("kmnist").state                 # "ready", "partial" or "missing"

Cache: ``data_root() / NAME`` where ``data_root()`` is ``$NETBUILDER_DATA_DIR`` if set, else
``<user data dir>/netbuilder/datasets`` (platformdirs). Files keep their published names
(``train-images-idx3-ubyte.gz``, ``cifar-10-binary.tar.gz``); a file is only ever there once
verified (see ``engine.data.download``). ``.verified.json`` remembers each file's size and
modification time when its checksum matched, so a cache hit reads no network and re-hashes
nothing; a file changed since is checked again before use.

Driving it from a GUI: call ``fetch_dataset`` (or ``load_remote_dataset``) in a worker
thread, never the UI thread.

- ``progress(p: DownloadProgress)`` is called from that thread, at most ~20 times a second
  and at the start and end of each file, with ``p.done`` / ``p.total`` bytes over the dataset, ``p.file``,
  ``p.file_done`` / ``p.file_total`` and the ``p.url`` being read; ``p.fraction`` is 0 … 1.
- ``cancel`` is a ``threading.Event`` (or any ``() -> bool``) the UI sets; the worker then
  raises ``DownloadCancelledError`` within one read or ``timeout`` seconds. The partial file is
  kept and the next fetch resumes it; ``remove_dataset`` discards it.
- Errors are ``DataError`` with a message to show as is: offline (every mirror and why),
  a checksum mismatch (the file, expected and actual SHA-256; the file is deleted), not
  enough disk space. ``OSError`` means the cache folder cannot be written.
- "Open files I already have": ``add_local_files(name, paths)`` checks files the user
  downloaded elsewhere against the catalogue and copies the matching ones into the cache
  (any file or folder can also be opened directly with ``load_dataset(path)``).
- Fetches of the same dataset in one process are serialised (a second waits for the first).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text
from ..errors import DataError, short_repr
from .catalogue import CATALOGUE, RemoteDataset, RemoteFile, remote_names
from .dataset import Dataset
from .download import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
    OPEN_YOURSELF,
    PARTIAL_FOLDER,
    DownloadCancelledError,
    DownloadProgress,
    FileDownload,
    ProgressFn,
    as_cancel_fn,
    checksum_problem,
    file_digests,
    partial_path,
)

ENV_DATA_DIR = "NETBUILDER_DATA_DIR"
MANIFEST = ".verified.json"
SPACE_MARGIN = 16 * 2**20  # keep this much disk free beyond the download

__all__ = ["ENV_DATA_DIR", "CacheState", "DownloadCancelledError", "DownloadProgress",
           "add_local_files", "cache_state", "data_root", "dataset_folder", "fetch_dataset",
           "load_remote_dataset", "remote_dataset", "remote_names", "remove_dataset"]

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def data_root() -> Path:
    """Where downloaded datasets live: ``$NETBUILDER_DATA_DIR``, else the user data folder."""
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        return Path(env).expanduser()
    try:
        from platformdirs import user_data_dir
    except ImportError:  # the engine alone, without the app's dependencies
        base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
        return Path(base) / "netbuilder" / "datasets"
    return Path(user_data_dir("netbuilder", appauthor=False)) / "datasets"


def remote_dataset(name: str) -> RemoteDataset:
    """The catalogue entry of ``name``; DataError naming the choices if there is none."""
    entry = CATALOGUE.get(name)
    if entry is None:
        raise DataError(f"no downloadable dataset named {short_repr(name)}; they are "
                        f"{', '.join(remote_names())}")
    return entry


def dataset_folder(name: str) -> Path:
    """The cache folder of one dataset (it may not exist yet)."""
    return data_root() / remote_dataset(name).name


def _lock(name: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(name, threading.Lock())


# ----- what is cached ---------------------------------------------------------------------
def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _record_verified(folder: Path, spec: RemoteFile) -> None:
    st = (folder / spec.name).stat()
    manifest = _read_manifest(folder)
    manifest[spec.name] = {"sha256": spec.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))


def _known_good(folder: Path, spec: RemoteFile, manifest: dict[str, Any]) -> bool:
    """The file is there, unchanged since its checksum matched (no hashing)."""
    try:
        st = (folder / spec.name).stat()
    except OSError:
        return False
    rec = manifest.get(spec.name)
    return (isinstance(rec, dict) and rec.get("sha256") == spec.sha256
            and rec.get("size") == st.st_size == spec.size and rec.get("mtime_ns") == st.st_mtime_ns)


def _verify_in_place(folder: Path, spec: RemoteFile) -> str | None:
    """Hash a cached file not (or no longer) known good: None and recorded if it matches,
    else what is wrong with it."""
    path = folder / spec.name
    size = path.stat().st_size
    if size != spec.size:
        return f"it is {size:,} bytes, expected {spec.size:,}"
    problem = checksum_problem(spec, size, *file_digests(path, spec))
    if problem is None:
        _record_verified(folder, spec)
    return problem


@dataclass(frozen=True)
class CacheState:
    """How much of a dataset is on disk. ``state``: "ready" (every file verified),
    "partial" (some files or a part of one) or "missing"."""

    name: str
    title: str
    state: str
    have_bytes: int        # verified files plus partial downloads
    total_bytes: int
    folder: Path
    missing: tuple[str, ...]   # files not yet verified in the cache

    @property
    def ready(self) -> bool:
        return self.state == "ready"


def cache_state(name: str) -> CacheState:
    """Whether ``name`` is downloaded, from file sizes and the verified record (no hashing:
    a file changed since it was verified counts as missing until checked again)."""
    entry = remote_dataset(name)
    folder = dataset_folder(name)
    manifest = _read_manifest(folder)
    have, missing = 0, []
    for spec in entry.files:
        if _known_good(folder, spec, manifest):
            have += spec.size
            continue
        missing.append(spec.name)
        with contextlib.suppress(OSError):
            have += min(partial_path(folder / spec.name).stat().st_size, spec.size)
    state = "ready" if not missing else "partial" if have else "missing"
    return CacheState(entry.name, entry.title, state, have, entry.size, folder, tuple(missing))


# ----- download -----------------------------------------------------------------------------
def fetch_dataset(name: str, *, progress: ProgressFn | None = None, cancel: Any = None,
                  timeout: float = DEFAULT_TIMEOUT_S, retries: int = DEFAULT_RETRIES) -> Path:
    """Make sure every file of ``name`` is in the cache, downloading what is missing; returns
    the dataset's folder. A cached file that fails its checksum is downloaded again.
    Raises DataError (offline, corrupt download, no space), DownloadCancelledError or OSError."""
    entry = remote_dataset(name)
    is_cancelled = as_cancel_fn(cancel)
    with _lock(entry.name):
        folder = dataset_folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        manifest = _read_manifest(folder)
        todo = []
        for spec in entry.files:
            if _known_good(folder, spec, manifest):
                continue
            if (folder / spec.name).exists() and _verify_in_place(folder, spec) is None:
                continue
            with contextlib.suppress(FileNotFoundError):
                (folder / spec.name).unlink()  # a damaged cache file: fetch it again
            todo.append(spec)
        _check_space(folder, entry, todo)
        done = entry.size - sum(s.size for s in todo)
        for spec in todo:
            FileDownload(spec, folder / spec.name, entry.title, progress=progress,
                         cancel=is_cancelled, timeout=timeout, retries=retries, base=done,
                         total=entry.size, dataset=entry.name).run()
            _record_verified(folder, spec)
            done += spec.size
        with contextlib.suppress(OSError):
            (folder / PARTIAL_FOLDER).rmdir()  # only when empty
    return folder


def _check_space(folder: Path, entry: RemoteDataset, todo: list[RemoteFile]) -> None:
    need = 0
    for spec in todo:
        try:
            need += spec.size - partial_path(folder / spec.name).stat().st_size
        except OSError:
            need += spec.size
    if not need:
        return
    free = shutil.disk_usage(folder).free
    if free < need + SPACE_MARGIN:
        raise DataError(f"not enough disk space for {entry.title}: it needs {need / 2**20:,.1f} "
                        f"MB in {folder}, {free / 2**20:,.1f} MB are free (set {ENV_DATA_DIR} "
                        "to download elsewhere)")


def remove_dataset(name: str) -> None:
    """Delete a dataset's cache folder (files, partial downloads and the verified record)."""
    entry = remote_dataset(name)
    with _lock(entry.name):
        shutil.rmtree(dataset_folder(name), ignore_errors=True)


def add_local_files(name: str, paths: Iterable[str | os.PathLike]) -> CacheState:
    """Copy files the user already has into the cache: each path (a file, or a folder whose
    files are all looked at) whose size and checksums match one of the dataset's files is
    copied in under the published name. DataError if none matches, naming what is expected."""
    entry = remote_dataset(name)
    by_size: dict[int, list[RemoteFile]] = {}
    for spec in entry.files:
        by_size.setdefault(spec.size, []).append(spec)
    candidates: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            candidates += sorted(f for f in p.iterdir() if f.is_file())
        elif p.is_file():
            candidates.append(p)
        else:
            raise DataError(f"no such file or folder: {p}")
    with _lock(entry.name):
        folder = dataset_folder(name)
        folder.mkdir(parents=True, exist_ok=True)
        added = 0
        for path in candidates:
            for spec in by_size.get(path.stat().st_size, []):
                if checksum_problem(spec, spec.size, *file_digests(path, spec)) is None:
                    tmp = partial_path(folder / spec.name)
                    tmp.parent.mkdir(exist_ok=True)
                    shutil.copyfile(path, tmp)
                    os.replace(tmp, folder / spec.name)
                    _record_verified(folder, spec)
                    added += 1
                    break
        with contextlib.suppress(OSError):
            (folder / PARTIAL_FOLDER).rmdir()
    if not added:
        wanted = ", ".join(f"{s.name} ({s.size:,} bytes)" for s in entry.files)
        raise DataError(f"none of these files is part of {entry.title}: it needs {wanted}, "
                        "exactly as published (same size and SHA-256)")
    return cache_state(name)


# ----- read ---------------------------------------------------------------------------------
def load_remote_dataset(name: str, *, download: bool = True, progress: ProgressFn | None = None,
                        cancel: Any = None, timeout: float = DEFAULT_TIMEOUT_S,
                        **params: Any) -> Dataset:
    """The dataset ``name`` with its published test part as ``test`` and its class names,
    downloading it first if needed (unless ``download`` is false: then DataError when it
    is not cached)."""
    entry = remote_dataset(name)
    if params:
        raise DataError(f"dataset '{name}' has no settings (got {', '.join(sorted(params))})")
    if download:
        folder = fetch_dataset(name, progress=progress, cancel=cancel, timeout=timeout)
    else:
        state = cache_state(name)
        if not state.ready:
            raise DataError(f"{entry.title} is not downloaded yet ({state.state}); fetch it "
                            f"with `netbuilder datasets fetch {name}`, or " + OPEN_YOURSELF)
        folder = state.folder
    return _read(entry, folder)


def _read(entry: RemoteDataset, folder: Path) -> Dataset:
    if entry.reader == "cifar10-binary":
        from .cifar import load_cifar10
        ds = load_cifar10(folder / entry.files[0].name, name=entry.name)
    elif entry.reader == "idx":
        from .idx import load_mnist

        def file(start: str) -> Path:  # the catalogue's files, not whatever else is there
            return next(folder / f.name for f in entry.files if f.name.startswith(start))

        ds = load_mnist(file("train-images"), file("train-labels"))
        ds.test = load_mnist(file("t10k-images"), file("t10k-labels"))
        ds.name, ds.test.name = entry.name, f"{entry.name} test"
    else:
        raise DataError(f"dataset '{entry.name}': unknown reader {entry.reader!r}")
    expected = entry.sample_shape
    if ds.sample_shape != expected:
        raise DataError(f"{folder}: {entry.title} images should be {expected}, these are "
                        f"{ds.sample_shape}")
    n_classes = len(entry.class_names)
    for part in (ds, ds.test):
        if part is None:
            continue
        part.class_names = list(entry.class_names)
        if part.y is not None and part.y.size and int(part.y.max()) >= n_classes:
            raise DataError(f"{folder}: label {int(part.y.max())} in {part.name}; "
                            f"{entry.title} has {n_classes} classes")
        part.meta.update({"kind": "image", "source": str(folder), "remote": entry.name,
                          "title": entry.title})
    return ds
