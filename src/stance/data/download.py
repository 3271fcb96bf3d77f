"""Fetch a public corpus once, verify it by sha256, cache it under ``data/external/``.

NewsMTSC's train and dev splits are public files in the authors' repository. Recipes that need
them name ``data.source=auto``: the first of these that holds every file is used —

1. ``../shared/newsmtsc`` (a copy beside the checkout: this project's CI and development machines),
2. the cache ``data/external/newsmtsc/`` (a verified earlier download),
3. a download from the pinned upstream commit into that cache, each file checked against its
   sha256 before it is renamed into place (a failed, interrupted or tampered download leaves
   nothing behind).

With none reachable the error is one line saying how to provide the files. Any other
``data.source`` (a folder or a base URL) is used as given.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from stance.errors import StanceError
from stance.io import atomic_path

log = logging.getLogger(__name__)

AUTO = "auto"


@dataclass(frozen=True)
class RemoteFile:
    name: str  # file name in the cache folder
    url: str
    sha256: str
    size: int


_NEWSMTSC_BASE = (
    "https://raw.githubusercontent.com/fhamborg/NewsMTSC/6b838e00f54423c253806327a0ae24dbffa24c9e/"
    "NewsSentiment/experiments/default/datasets"
)
# The train and dev splits only: the test splits are held out on purpose and never fetched.
NEWSMTSC_FILES: tuple[RemoteFile, ...] = (
    RemoteFile(
        "train.jsonl",
        f"{_NEWSMTSC_BASE}/newsmtsc-mt-hf/train.jsonl",
        "e78c7964aad1d5b7dbc66cb3a05d5885dbf2e29a2a3171f0d75b497bf18f3621",
        2522316,
    ),
    RemoteFile(
        "dev_rw.jsonl",
        f"{_NEWSMTSC_BASE}/newsmtsc-rw-hf/dev.jsonl",
        "78b5dde35a97b452035c07c142fac5ecf44dd998217921cff62a1519ed01e952",
        99824,
    ),
    RemoteFile(
        "dev_mt.jsonl",
        f"{_NEWSMTSC_BASE}/newsmtsc-mt-hf/dev.jsonl",
        "9dc6480071836094894ee9606cd6bd810d3edeb2d37638d751e55bbb7d375aaa",
        136979,
    ),
)
SHARED_NEWSMTSC = Path("../shared/newsmtsc")
CACHE_NEWSMTSC = Path("data/external/newsmtsc")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(remote: RemoteFile, dest: Path, timeout: float = 60.0) -> Path:
    """Download ``remote`` to ``dest`` atomically; StanceError (nothing written) on any failure."""
    with atomic_path(dest) as tmp:
        h = hashlib.sha256()
        got = 0
        try:
            with urllib.request.urlopen(remote.url, timeout=timeout) as resp, tmp.open("wb") as out:
                for block in iter(lambda: resp.read(1 << 16), b""):
                    out.write(block)
                    h.update(block)
                    got += len(block)
        except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as err:
            reason = getattr(err, "reason", err)
            raise StanceError(f"{remote.url}: download failed ({reason}) after {got} bytes") from None
        if got != remote.size or h.hexdigest() != remote.sha256:
            raise StanceError(
                f"{remote.url}: checksum mismatch ({got} bytes, sha256 {h.hexdigest()[:12]}..., "
                f"expected {remote.size} bytes, {remote.sha256[:12]}...); nothing was kept"
            )
    return dest


def _complete(folder: Path, files: tuple[RemoteFile, ...], verify: bool) -> bool:
    if not all((folder / f.name).is_file() for f in files):
        return False
    return not verify or all(sha256_of(folder / f.name) == f.sha256 for f in files)


def resolve_source(
    source: str,
    files: tuple[RemoteFile, ...] = NEWSMTSC_FILES,
    shared: Path = SHARED_NEWSMTSC,
    cache: Path = CACHE_NEWSMTSC,
    allow_download: bool = True,
) -> str:
    """The folder (or URL) a corpus is read from; see the module docstring for ``auto``."""
    if source != AUTO:
        return source
    if _complete(shared, files, verify=False):  # a maintained copy: trusted as it is
        return str(shared)
    if _complete(cache, files, verify=True):
        return str(cache)
    if not allow_download:
        raise StanceError(
            f"data.source=auto: NewsMTSC not found in {shared} or {cache} and downloads are off; "
            f"put train.jsonl, dev_rw.jsonl, dev_mt.jsonl in one of them or set data.source=FOLDER"
        )
    for f in files:
        if not (cache / f.name).is_file() or sha256_of(cache / f.name) != f.sha256:
            log.info("downloading %s -> %s", f.url, cache / f.name)
            try:
                download(f, cache / f.name)
            except StanceError as err:
                raise StanceError(
                    f"data.source=auto: {err}; without internet, put the NewsMTSC files in {shared} "
                    f"or {cache}, or set data.source=FOLDER"
                ) from None
    return str(cache)
