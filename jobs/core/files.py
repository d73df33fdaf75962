"""Atomic writes outside the lake's versioned tables: a file or a folder appears whole or not at all.

Both write beside the target and commit with one ``rename`` (atomic on POSIX), so a crash leaves the
previous content, and a rerun replaces it.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def write_text(path: Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(path: Path, payload: Any) -> Path:
    return write_text(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


@contextmanager
def staged_dir(target: Path) -> Iterator[Path]:
    """Yield an empty folder beside ``target``; on success it replaces ``target``, on error it is removed."""
    target = Path(target)
    staged = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    staged.mkdir(parents=True)
    try:
        yield staged
        if target.exists():
            shutil.rmtree(target)
        os.replace(staged, target)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
