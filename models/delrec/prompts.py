"""DELRec's prompts in the project's own wording: one text for the Spark job and for the trainer.

Three tasks share one frame: a head naming the teacher and carrying the soft prompt (``SOFT_MARK``), the
user's history (titles, oldest first, ``; ``-separated), a question, and the candidates (one title per
line). ``ta`` (temporal analysis) hides one recent history item as ``[hidden]``; ``rps`` (recommendation
pattern simulating) asks for the teacher's first choice, or, given its earlier choices, its next one; ``rec``
asks for the user's next item. The pieces are module constants / small functions so jobs/delrec/data.py
builds the very same ``prompt`` column with Spark ``concat`` (a test checks them equal).

Truncation rule (:func:`fit_history`): when a prompt does not fit the context, the *oldest* history titles are
dropped one by one, never the last ``keep`` (the hidden slot and what follows it for ``ta``, one title
otherwise), and never a candidate; an example that does not fit even then is skipped (``None``).
Imports nothing heavy: the Spark job reads these constants without loading torch.
"""

from __future__ import annotations

from collections.abc import Sequence

from models.llmrec.text import SOFT_MARK

TASKS = ("ta", "rps", "rec")
HIDDEN = "[hidden]"
HISTORY_SEP = "; "
CANDIDATE_SEP = "\n"
SYSTEM = "You are a recommender. Answer with exactly one title from the candidates."
TEMPLATE_VERSION = "delrec-v1"
INTRO = {
    "ta": "A user's history, oldest first, with one item shown as [hidden]: ",
    "rps": "The history {teacher} read, oldest first: ",
    "rec": "A user's history, oldest first: ",
}
QUESTION = {
    "ta": "\nWhich candidate is the [hidden] item?",
    "rec": "\nWhich candidate will the user choose next?",
}
CANDIDATES_INTRO = "\nCandidates:\n"
ANSWER_HINT = "\nAnswer with the title of one candidate."


def head(teacher: str) -> str:
    """The opening that names the teacher and holds the soft prompt."""
    return f"Patterns the {teacher} sequential recommender has learned: {SOFT_MARK}\n"


def intro(task: str, teacher: str) -> str:
    return INTRO[_check(task)].format(teacher=teacher)


def rps_question(teacher: str) -> tuple[str, str, str]:
    """(first step, later steps before the given titles, later steps after them)."""
    return (f"\nWhich candidate did {teacher} rank first as the next item?", f"\n{teacher} ranked these first: ",
            f".\nWhich candidate did {teacher} rank next?")


def question(task: str, teacher: str, given: Sequence[str] = ()) -> str:
    if _check(task) != "rps":
        return QUESTION[task]
    first, before, after = rps_question(teacher)
    return first if not given else before + HISTORY_SEP.join(given) + after


def render(task: str, *, teacher: str, history: Sequence[str], candidates: Sequence[str],
           given: Sequence[str] = ()) -> str:
    """The prompt of one example (identical to the Spark job's ``prompt`` column for the same parts)."""
    return (head(teacher) + intro(task, teacher) + HISTORY_SEP.join(history) + question(task, teacher, given)
            + CANDIDATES_INTRO + CANDIDATE_SEP.join(candidates) + ANSWER_HINT)


def fit_history(fits, history: Sequence[str], keep: int) -> int | None:
    """How many of the oldest titles to drop so that ``fits(history[drop:])`` holds, keeping at least the last
    ``keep``; ``None`` when even that does not fit. ``fits`` renders and measures the prompt."""
    keep = max(1, min(keep, len(history))) if len(history) else 0
    for drop in range(0, len(history) - keep + 1):
        if fits(list(history[drop:])):
            return drop
    return None


def _check(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"unknown DELRec task {task!r}; choose one of {list(TASKS)}")
    return task
