"""Profile generation throughput: template vs transformers vs vllm(-cpu) on ml-100k user prompts.

    python -m benchmarks.profiles [--users 32] [--batch 16] [--max-new-tokens 96]
                                  [--backends template,transformers,vllm] [--gemma-items 16]

Builds the real user prompts (titles, ratings, demographics; budget settings.llm.prompt_token_budget)
for the first ``--users`` ml-100k users straight from the GroupLens files, runs each backend with the
validation and retry of the profile job, and writes benchmarks/reports/profiles.{json,md}: profiles/s,
generated tokens/s, model start-up time, failures and a sample profile per backend. The local models are
the prepared SmolLM2 folder (``ktrec models prepare smollm2``). The machine's load average is recorded
because the development machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from jobs.core.settings import Settings, get_settings
from jobs.profiles.llm import backend as backend_for
from models.llm.prepare import prepare
from models.llm.prompts import Rated, item_prompt, user_prompt
from models.llm.validate import generate_checked

REPORTS = Path(__file__).resolve().parent / "reports"


def ml100k_items(settings: Settings) -> dict[str, tuple[str, int | None, str]]:
    root = settings.dataset
    genres = [g.split("|")[0] for g in (root / "u.genre").read_text(encoding="latin-1").split("\n") if g]
    items = pd.read_csv(root / "u.item", sep="|", encoding="latin-1", header=None)
    meta = {}
    for row in items.itertuples(index=False):
        flags = list(row[5 : 5 + len(genres)])
        year = pd.to_datetime(row[2], errors="coerce")
        meta[str(row[0])] = (
            str(row[1]),
            None if pd.isna(year) else int(year.year),
            "|".join(g for g, f in zip(genres, flags, strict=False) if f == 1),
        )
    return meta


def ml100k_prompts(settings: Settings, *, n_users: int, count_tokens) -> list:
    root = settings.dataset
    meta = ml100k_items(settings)
    users = pd.read_csv(
        root / "u.user", sep="|", header=None, names=["user_id", "age", "gender", "occupation", "zip"]
    )
    events = pd.read_csv(root / "u.data", sep="\t", header=None, names=["user_id", "item_id", "rating", "ts"])
    chosen = sorted(events["user_id"].unique())[:n_users]
    prompts = []
    for uid in chosen:
        mine = events[events["user_id"] == uid].sort_values(["ts", "item_id"], ascending=[False, True])
        history = [
            Rated(
                item_id=str(i),
                title=meta[str(i)][0],
                rating=float(r),
                year=meta[str(i)][1],
                genres=meta[str(i)][2],
            )
            for i, r in zip(mine["item_id"], mine["rating"], strict=False)
        ]
        attrs = users[users["user_id"] == uid].iloc[0].to_dict()
        prompts.append(
            user_prompt(
                user_id=str(uid),
                attributes=attrs,
                history=history,
                count_tokens=count_tokens,
                token_budget=settings.llm.prompt_token_budget,
            )
        )
    return prompts


def gemma_item_prompts(settings: Settings, *, n_items: int) -> list:
    """Completion prompts ("<title> is a") for the first ml-100k items (Gemma 3 270M base knows films)."""
    meta = ml100k_items(settings)
    return [
        item_prompt(item_id=i, row={"title": t, "year": y, "genres": g})
        for i, (t, y, g) in sorted(meta.items(), key=lambda kv: int(kv[0]))[:n_items]
    ]


def bench(settings: Settings, name: str, *, n_users: int, batch: int, items_model: str | None = None) -> dict:
    started = time.perf_counter()
    if items_model:
        settings = settings.model_copy(deep=True)
        settings.llm.model = str(prepare(settings.models_dir, items_model))
    backend = backend_for(settings, name)
    startup = time.perf_counter() - started
    prompts = (
        gemma_item_prompts(settings, n_items=n_users)
        if items_model
        else ml100k_prompts(settings, n_users=n_users, count_tokens=backend.count_tokens)
    )
    gens, retried = [], 0
    t0 = time.perf_counter()
    for start in range(0, len(prompts), batch):
        out, n = generate_checked(
            backend, prompts[start : start + batch], max_new_tokens=settings.llm.max_new_tokens
        )
        gens += out
        retried += n
    seconds = time.perf_counter() - t0
    if hasattr(backend, "close"):
        backend.close()
    tokens = sum(g.generated_tokens or 0 for g in gens)
    samples = [g.text for g in gens if g.ok][:3]
    return {
        "backend": name,
        "model": Path(backend.model).name,
        "entity": "item" if items_model else "user",
        "profiles": len(prompts),
        "batch": batch,
        "startup_s": round(startup, 1),
        "generate_s": round(seconds, 2),
        "profiles_per_s": round(len(prompts) / seconds, 3),
        "generated_tokens": tokens,
        "tokens_per_s": round(tokens / seconds, 1) if name != "template" else None,
        "failed": sum(not g.ok for g in gens),
        "retried": retried,
        "mean_prompt_tokens": round(sum(g.prompt_tokens or 0 for g in gens) / max(1, len(gens)), 1),
        "samples": samples,
    }


def to_markdown(report: dict) -> str:
    lines = [
        f"# Profile generation throughput ({report['date']})",
        "",
        (
            f"{report['users']} ml-100k users, batch {report['batch']}, "
            f"max_new_tokens {report['max_new_tokens']}, "
            f"prompt budget {report['prompt_token_budget']} tokens; "
            f"{report['machine']}; load average at start {report['load_average']}."
        ),
        "",
        "| backend | model | entity | profiles/s | generated tok/s | start-up s | generate s | failed "
        "| retried |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['backend']} | {r['model']} | {r['entity']} | {r['profiles_per_s']} | "
            f"{r['tokens_per_s'] or '-'} | {r['startup_s']} | {r['generate_s']} | {r['failed']} | "
            f"{r['retried']} |"
        )
    lines += ["", "## Sample profiles", ""]
    lines += [
        f"- **{r['backend']} / {r['model']} ({r['entity']})**: {text}"
        for r in report["results"]
        for text in r["samples"]
    ]
    return "\n".join(lines) + "\n"


def write_report(report: dict) -> None:
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "profiles.json").write_text(json.dumps(report, indent=2) + "\n")
    (REPORTS / "profiles.md").write_text(to_markdown(report))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--backends", default="template,transformers,vllm")
    parser.add_argument(
        "--gemma-items",
        type=int,
        default=0,
        help="Also write this many item profiles with Gemma 3 270M base (transformers).",
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    settings.llm.max_new_tokens = args.max_new_tokens
    settings.llm.batch_size = settings.llm.max_num_seqs = args.batch
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "users": args.users,
        "batch": args.batch,
        "max_new_tokens": args.max_new_tokens,
        "prompt_token_budget": settings.llm.prompt_token_budget,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average": [round(x, 1) for x in os.getloadavg()],
        "results": [],
    }
    runs = [(name, None, args.users) for name in args.backends.split(",") if name]
    runs += [("transformers", "gemma3", args.gemma_items)] if args.gemma_items else []
    for name, items_model, count in runs:
        report["results"].append(
            bench(settings, name, n_users=count, batch=args.batch, items_model=items_model)
        )
        write_report(report)  # after each backend: a slow one never loses the others' figures
    print(to_markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
