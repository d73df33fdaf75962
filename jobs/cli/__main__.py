"""``python -m jobs.cli``: the ``ktrec`` command line without the console script (tests use it).

The guard matters: vLLM starts its workers with ``spawn``, which re-imports this module as ``__mp_main__``.
"""

from jobs.cli import app

if __name__ == "__main__":
    app(prog_name="ktrec")
