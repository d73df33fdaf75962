"""Download the public datasets ktrec can ingest (``ktrec datasets download NAME --dest DIR``).

Each archive is streamed to a temporary file, its MD5 checked (pinned for the frozen MovieLens releases;
``ml-latest-small`` changes between releases, so its checksum is read from the ``.md5`` file GroupLens
publishes beside it), then unpacked into a temporary folder renamed into place: an interrupted or
corrupt download never leaves a half dataset behind. Without network it fails with a clear message.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx

log = logging.getLogger(__name__)
GROUPLENS = "https://files.grouplens.org/datasets/movielens"


@dataclass(frozen=True)
class Dataset:
    name: str
    url: str
    md5: str | None = None  # None: read GroupLens' published <url>.md5
    folder: str = ""  # the folder name inside the archive

    @property
    def md5_url(self) -> str:
        return f"{self.url}.md5"


DATASETS = {
    d.name: d
    for d in (
        Dataset("ml-100k", f"{GROUPLENS}/ml-100k.zip", md5="0e33842e24a9c977be4e0107933c0723", folder="ml-100k"),
        Dataset("ml-1m", f"{GROUPLENS}/ml-1m.zip", md5="c4d9eecfca2ab87c1945afe126590906", folder="ml-1m"),
        Dataset("ml-latest-small", f"{GROUPLENS}/ml-latest-small.zip", folder="ml-latest-small"),
    )
}


class DownloadError(RuntimeError):
    """The dataset could not be fetched or failed its checksum; nothing was written to the destination."""


def _get(client: httpx.Client, url: str, sink) -> None:
    try:
        with client.stream("GET", url) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes(1 << 20):
                sink(chunk)
    except httpx.HTTPError as exc:
        raise DownloadError(
            f"could not download {url}: {exc.__class__.__name__}: {exc}. Without network access, fetch the "
            "archive by hand, unpack it and pass its folder to `ktrec ingest --source`."
        ) from exc


def expected_md5(client: httpx.Client, dataset: Dataset) -> str:
    if dataset.md5:
        return dataset.md5
    parts: list[bytes] = []
    _get(client, dataset.md5_url, parts.append)
    text = b"".join(parts).decode("ascii", "replace").split()
    # GroupLens writes either "MD5 (file) = <hex>" or "<hex>  file".
    digest = next((t for t in text if len(t) == 32 and all(c in "0123456789abcdef" for c in t.lower())), None)
    if digest is None:
        raise DownloadError(f"{dataset.md5_url} holds no MD5 checksum")
    return digest.lower()


def download(name: str, *, dest: Path, url: str | None = None, md5: str | None = None,
             timeout_s: float = 30.0) -> Path:
    """Fetch, verify and unpack dataset ``name`` into ``dest/<name>``; returns that folder.

    ``url``/``md5`` override the registry entry (mirrors; tests use a local server).
    """
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
    base = DATASETS[name]
    dataset = Dataset(name, url or base.url, md5 if url else (md5 or base.md5), base.folder)
    target = Path(dest) / name
    if target.exists():
        log.info("%s already present at %s", name, target)
        return target
    Path(dest).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest, prefix=f".{name}-") as tmp, \
            httpx.Client(timeout=timeout_s, follow_redirects=True) as client:
        want = expected_md5(client, dataset)
        archive = Path(tmp) / "archive.zip"
        digest = hashlib.md5()
        with open(archive, "wb") as handle:
            def sink(chunk: bytes) -> None:
                digest.update(chunk)
                handle.write(chunk)
            _get(client, dataset.url, sink)
        if digest.hexdigest() != want:
            raise DownloadError(f"{dataset.url}: MD5 {digest.hexdigest()} does not match the expected {want}; "
                                "the archive was discarded")
        unpacked = Path(tmp) / "unpacked"
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(unpacked)
        inner = unpacked / dataset.folder
        shutil.move(str(inner if inner.is_dir() else unpacked), str(target))
    log.info("downloaded %s to %s", name, target)
    return target
