"""``python -m jobs.cli``: the ``ktrec`` command line (the package replaced the old ``jobs/cli.py``)."""

from jobs.cli import app

app()
