"""Small slices of MovieLens 100K for pipeline tests (written to tmp; the dataset is never copied whole)."""

from __future__ import annotations

import shutil
from pathlib import Path

from jobs.core.settings import DEFAULT_DATASET


def ml100k_slice(
    dest: Path, *, users: int = 60, corrupt: bool = False, late: tuple[int, int] | None = None,
    latest_at: int | None = None,
) -> Path:
    """The first ``users`` users' ratings with the full item and user files.

    ``corrupt`` replaces every rating with an out-of-range value, a batch validation must reject.
    ``late=(first_user, epoch_seconds)`` re-stamps the events of users >= first_user to that instant plus their
    position, as a log delivered on a later night would. ``latest_at`` (epoch seconds) shifts every timestamp
    so that the dataset's latest event falls then, the same shift for every slice: logs that arrive on the
    nights they belong to (MovieLens itself ends in 1998).
    """
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("u.item", "u.user", "u.genre", "u.occupation", "u.info"):
        if (DEFAULT_DATASET / name).is_file():
            shutil.copy(DEFAULT_DATASET / name, dest / name)
    lines = []
    source = (DEFAULT_DATASET / "u.data").read_text().splitlines()
    shift = latest_at - max(int(line.split("\t")[3]) for line in source) if latest_at is not None else 0
    for line in source:
        user, item, rating, ts = line.split("\t")
        ts = str(int(ts) + shift)
        if int(user) <= users:
            if late and int(user) >= late[0]:
                ts = str(late[1] + len(lines))
            lines.append("\t".join([user, item, "9" if corrupt else rating, ts]))
    (dest / "u.data").write_text("\n".join(lines) + "\n")
    return dest
