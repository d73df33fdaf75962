"""Capacity model: nightly wall time, cost and storage of ktrec at a target scale, from the benchmark reports.

    PYTHONPATH=. python -m benchmarks.capacity [--users 100000000] [--items 10000000] [--events-per-day 1e9]
        [--change-rate 0.01] [--nodes 10] [--cores-per-node 32] [--gpus 8] [--usd-per-node-hour 4.0] ...

Reads the JSON reports under ``benchmarks/reports/`` (``--reports``) and writes ``docs/capacity.md`` and
``benchmarks/reports/capacity.json``. Nothing is measured here. Every figure carries its kind and its source:

* ``measured``: a field of a report (named as ``file: field``);
* ``derived``: arithmetic on measured figures, the parameters and the schemas (the formula is given);
* ``quoted``: a published figure, not measured here (its source is named);
* ``assumed`` / ``config``: a command-line parameter or a value of the project's configuration;
* ``not measured``: no report holds it; the step's time is then "not measured", never guessed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from jobs.core import lake

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "benchmarks" / "reports"
NOT_MEASURED = "not measured"
REPORT_NAMES = ("ingest", "profiles", "feast_store", "cf_zoo", "kt_gain", "ddp")

# Published figures, quoted (not measured here).
QUOTED_GPU_TOKENS = {
    "value": 2200.0,
    "source": "vLLM blog, 'vLLM Large Scale Serving: DeepSeek @ 2.2k tok/s/H200 with Wide-EP' (2025-12-17, "
    "https://blog.vllm.ai/2025/12/17/large-scale-serving.html): sustained 2.2k tokens/s per H200 GPU, "
    "DeepSeek-V3-style MoE (37B active of 671B), multi-node wide-EP decode",
}
QUOTED_GPU_EMBED = {
    "value": 18000.0,
    "source": "Sentence Transformers docs, 'Pretrained Models' page, Multi-QA table: multi-qa-MiniLM-L6-cos-v1 "
    "(the 6-layer MiniLM architecture of all-MiniLM-L6-v2, which ktrec ships) 18,000 queries/s on GPU "
    "(750 on CPU); GPU model not named there; queries are shorter than profile texts",
}
# Bytes of one interactions row, uncompressed, by column of lake.INTERACTIONS_SCHEMA (ids: digits + 4-byte
# Parquet length prefix; `source` dictionary-encoded to ~1 byte; booleans 1 bit; event_date is a partition folder).
INTERACTION_WIDTHS = {"rating": 4, "event_ts": 8, "source": 1, "ts_synthetic": 0.125, "event_date": 0}


def fig(value, unit: str, kind: str, source: str) -> dict:
    return {"value": value, "unit": unit, "kind": kind if value is not None else NOT_MEASURED, "source": source}


def load_reports(folder: Path) -> dict:
    """Each known report as parsed JSON, or None when its file is missing."""
    return {n: json.loads(p.read_text()) if (p := folder / f"{n}.json").is_file() else None for n in REPORT_NAMES}


def step(name: str, work: str, rate: dict, hours: float | None, nodes_used: int, p, note: str, basis: str) -> dict:
    """One nightly step; ``basis`` names the kinds its wall time rests on (e.g. "measured + assumed")."""
    cost = None if hours is None else round(hours * nodes_used * p.usd_per_node_hour, 2)
    return {"step": name, "work": work, "rate": rate, "hours": hours, "nodes_used": nodes_used,
            "cost_usd": cost, "note": note, "basis": NOT_MEASURED if hours is None else basis}


def ingest_step(r: dict, p) -> dict:
    rep = r["ingest"]
    rate = fig(None, "rows/s per core", NOT_MEASURED, "ingest.json missing")
    if rep and rep.get("results"):
        big = max(rep["results"], key=lambda x: x["rows"])
        cpus = rep["machine"]["cpus"]
        rate = fig(big["spark"]["rows_per_s"] / cpus, "rows/s per core", "measured",
                   f"ingest.json: results[rows={big['rows']}].spark.rows_per_s / machine.cpus "
                   f"({big['spark']['rows_per_s']:.0f} / {cpus}; Spark {rep['machine']['spark_master']}, "
                   f"load 1m {big.get('load_avg_1m_before', 0):.1f})")
    cores = p.nodes * p.cores_per_node
    hours = None if rate["value"] is None else p.events_per_day / (rate["value"] * cores) / 3600
    return step("ingest (Spark: parse, validate, quarantine, dedupe, Parquet)", f"{p.events_per_day:,.0f} events",
                rate, hours, p.nodes, p,
                f"hours = events / (rows_per_s_per_core x {p.cores_per_node} cores x {p.nodes} nodes) / 3600; "
                "assumes rows/s scales linearly with cores (measured on one 2-core machine only)",
                "measured + assumed linear scaling")


def changed_entities(p) -> int:
    return round(p.change_rate * (p.users + p.items))


def profile_tokens(r: dict) -> tuple[dict, dict, dict]:
    """(generated tokens per entity, prompt tokens per entity, CPU tokens/s per core) from profiles.json."""
    rep = r["profiles"]
    if not rep:
        missing = "profiles.json missing"
        return (fig(None, "tokens", "", missing), fig(None, "tokens", "", missing), fig(None, "tok/s", "", missing))
    llm = [x for x in rep["results"] if x["backend"] != "template" and x.get("generated_tokens")]
    cpus = int(str(rep.get("machine", "")).split(",")[-1].split()[0]) if "CPUs" in str(rep.get("machine")) else None
    if llm:
        row = next((x for x in llm if x["backend"] == "vllm"), llm[0])
        where = f"profiles.json: results[backend={row['backend']}, model={row['model']}]"
        gen = fig(row["generated_tokens"] / row["profiles"], "tokens", "measured",
                  f"{where}.generated_tokens / .profiles")
        prompt = fig(row["mean_prompt_tokens"], "tokens", "measured", f"{where}.mean_prompt_tokens")
        cpu = fig(row["tokens_per_s"] / cpus if cpus else None, "tok/s per core", "measured",
                  f"{where}.tokens_per_s / {cpus} CPUs (profiles.json: machine)")
        return gen, prompt, cpu
    backends = ",".join(sorted({x["backend"] for x in rep["results"]})) or "none"
    gen = fig(float(rep["max_new_tokens"]), "tokens (upper bound)", "config",
              f"profiles.json: max_new_tokens (the cap; no LLM backend measured generated tokens, only {backends})")
    prompt = fig(float(rep["prompt_token_budget"]), "tokens (upper bound)", "config",
                 "profiles.json: prompt_token_budget")
    cpu = fig(None, "tok/s per core", "", f"profiles.json: no LLM backend row (only {backends}; tokens_per_s null)")
    return gen, prompt, cpu


def profile_step(r: dict, p) -> tuple[dict, dict]:
    gen, prompt, cpu = profile_tokens(r)
    n = changed_entities(p)
    gpu = fig(p.gpu_tokens_per_s, "generated tok/s per GPU", "quoted", QUOTED_GPU_TOKENS["source"]) \
        if p.gpu_tokens_per_s == QUOTED_GPU_TOKENS["value"] else \
        fig(p.gpu_tokens_per_s, "generated tok/s per GPU", "assumed", "--gpu-tokens-per-s")
    if p.gpus > 0:
        rate, capacity, where = gpu, p.gpu_tokens_per_s * p.gpus, f"{p.gpus} GPUs"
    else:
        rate = cpu
        capacity = None if cpu["value"] is None else cpu["value"] * p.nodes * p.cores_per_node
        where = f"{p.nodes * p.cores_per_node} CPU cores"
    hours = None if capacity is None or gen["value"] is None else n * gen["value"] / capacity / 3600
    cpu_hours = None if cpu["value"] is None or gen["value"] is None else \
        n * gen["value"] / (cpu["value"] * p.nodes * p.cores_per_node) / 3600
    figures = {"generated_tokens_per_entity": gen, "prompt_tokens_per_entity": prompt,
               "gpu_tokens_per_s": gpu, "cpu_tokens_per_s_per_core": cpu,
               "cpu_alternative_hours": fig(cpu_hours, "h", "derived", "same work on every CPU core")}
    s = step("profiles (LLM generation)", f"{n:,} changed entities x {gen['value']} generated tokens",
             rate, hours, p.nodes, p,
             f"hours = change_rate x (users + items) x tokens_per_entity / (rate x {where}) / 3600; "
             "prompt (prefill) tokens are not counted by the quoted decode rate",
             f"{gen['kind']} tokens + {rate['kind']} rate")
    return s, figures


def embed_step(p) -> dict:
    n = changed_entities(p)
    rate = fig(p.gpu_embed_per_s, "texts/s per GPU", "quoted", QUOTED_GPU_EMBED["source"]) if p.gpus else \
        fig(None, "texts/s per core", "", "no report measures the MiniLM encoder (models/embed.py)")
    hours = None if rate["value"] is None else n / (rate["value"] * p.gpus) / 3600
    return step("embedding (MiniLM, 384-d)", f"{n:,} profile texts", rate, hours, p.nodes, p,
                "hours = changed entities / (rate x GPUs) / 3600; no benchmark here measures it "
                "(feast_store.py and serving.py write random vectors)", "quoted")


def stats_step(r: dict, p) -> dict:
    rep = r["feast_store"]
    small = "feast_store.json missing"
    if rep and "stats_job_as_of_2" in rep.get("seconds", {}):
        small = (f"feast_store.json: seconds.stats_job_as_of_2 = {rep['seconds']['stats_job_as_of_2']} s for "
                 f"{rep['interactions']:,} interactions on {rep['cpus']} CPUs: fixed Spark overhead at that size, "
                 "not a rate to scale")
    rate = fig(None, "rows/s per core", "", small)
    return step("stats (Spark: user_stats / item_stats over the whole history)",
                f"all interactions to date ({p.events_per_day:,.0f} x days of history)", rate, None, p.nodes, p,
                "not measured at scale: no report times the stats job on more than MovieLens 100K", "")


def materialize_step(r: dict, p) -> dict:
    rep = r["feast_store"]
    rate = fig(None, "rows/s", "", "feast_store.json missing")
    if rep and "materialize_initial" in rep.get("seconds", {}):
        rows = 2 * (rep["users"] + rep["items"])
        store = rep.get("online_store", "?")
        rate = fig(rows / rep["seconds"]["materialize_initial"], f"rows/s into {store}", "derived",
                   f"feast_store.json: 2 x (users + items) / seconds.materialize_initial "
                   f"({rows} rows / {rep['seconds']['materialize_initial']} s; 4 views = profile and stats per "
                   f"entity, one row per entity; online_store={store}, load {rep['load_average'][0]:.0f} "
                   f"on {rep['cpus']} CPUs)")
        if store != "redis":
            rate["source"] += "; measured into SQLite, not Redis: used as a stand-in (ASSUMED comparable)"
    rows = p.users + p.items + changed_entities(p)
    hours = None if rate["value"] is None else rows / rate["value"] / 3600
    return step("materialize (Feast, offline -> online store)",
                f"{rows:,} rows (stats of every entity, re-stamped nightly + changed profiles)", rate, hours, 1, p,
                "hours = (users + items + changed entities) / rate / 3600; one process (Feast's local engine, "
                "ASSUMED not to scale with nodes); jobs/publish/stats.py stamps every entity's stats row each night",
                "measured (SQLite) + assumed")


def scenario_epochs(model: str, variant: str) -> int | None:
    path = ROOT / "conf" / model / f"{variant}.yaml"
    if not path.is_file():
        return None
    commands = yaml.safe_load(path.read_text())["commands"]
    return sum(c["train"]["epochs"] for c in commands if "train" in c)


def ddp_efficiency(r: dict, p) -> dict:
    """Measured scaling efficiency from ddp.json ({"results": [{"num_processes", "seconds_per_epoch"}]}) or the
    assumed one (--ddp-efficiency)."""
    rep = r["ddp"]
    if rep and len(rep.get("results", [])) > 1:
        by_n = {x["num_processes"]: x["seconds_per_epoch"] for x in rep["results"]}
        n = max(by_n)
        return fig(by_n[min(by_n)] * min(by_n) / (n * by_n[n]), "", "measured",
                   f"ddp.json: seconds_per_epoch at {min(by_n)} vs {n} processes")
    return fig(p.ddp_efficiency, "", "assumed",
               "ASSUMED (--ddp-efficiency): no report measures DDP scaling (no ddp.json)")


def train_step(r: dict, p) -> tuple[dict, dict]:
    zoo, kt = r["cf_zoo"], r["kt_gain"]
    base = fig(None, "s/epoch per M interactions", "", "cf_zoo.json missing or without the model")
    row = next((x for x in (zoo or {}).get("results", []) if x["model"] == p.model), None)
    threads = (zoo or {}).get("threads", 1)
    dim = row["config"].get("embedding_dim") if row else None
    if row:
        n_train = zoo["split"]["counts"]["train"]
        base = fig(row["seconds_per_epoch"] / (n_train / 1e6), f"s/epoch per M interactions on {threads} threads",
                   "measured", f"cf_zoo.json: results[model={p.model}].seconds_per_epoch / (split.counts.train / 1e6)"
                   f" ({row['seconds_per_epoch']:.4f} s / {n_train:,}; load {zoo['load_average'][0]})")
    ratio = fig(None, "x", "", "kt_gain.json missing or without the model")
    pair = {x["variant"]: x["seconds_per_epoch"] for x in (kt or {}).get("results", [])
            if x["model"] == p.model and x["split"] == "random"}
    if {"baseline", "kt"} <= pair.keys():
        ratio = fig(pair["kt"] / pair["baseline"], "x", "measured",
                    f"kt_gain.json: results[split=random, model={p.model}] seconds_per_epoch kt / baseline "
                    f"({pair['kt']:.3f} / {pair['baseline']:.3f})")
    epochs = {v: scenario_epochs(p.model, v) for v in ("baseline", "kt")}
    eff = ddp_efficiency(r, p)
    ranks = max(1, p.nodes * p.cores_per_node // threads)
    m = p.events_per_day * p.train_days / 1e6
    hours = None
    if base["value"] is not None and ratio["value"] is not None and None not in epochs.values():
        one_rank = base["value"] * m * (epochs["baseline"] + ratio["value"] * epochs["kt"])
        hours = one_rank / (ranks * eff["value"]) / 3600
    params = (p.users + p.items) * dim if dim else None
    step_bytes = params * 4 if params else None
    figures = {
        "s_per_epoch_per_m": base, "kt_over_baseline": ratio, "ddp_efficiency": eff,
        "epochs": fig(epochs, "", "config", f"conf/{p.model}/baseline.yaml and kt.yaml: sum of train.epochs "
                      "(upper bound: patience may stop earlier)"),
        "ranks": fig(ranks, "", "derived", f"nodes x cores_per_node // {threads} threads per rank (cf_zoo.json)"),
        "model_bytes": fig(step_bytes, "B", "derived", f"(users + items) x embedding_dim ({dim}, cf_zoo.json "
                           "config) x 4 B: every DDP rank holds a full replica (x4 with gradients and Adam state)"),
        "replica_memory_per_node": fig(step_bytes and step_bytes * 4 * ranks // max(1, p.nodes), "B", "derived",
                                       "model_bytes x 4 (weights, gradients, Adam m and v) x ranks per node"),
        "allreduce_bytes_per_step": fig(step_bytes, "B", "derived",
                                        "dense embedding gradients (nn.Embedding, models/cf/bpr.py) all-reduced "
                                        "every step by DDP; batch_size 2048 in the scenario"),
    }
    s = step(f"training ({p.model}: baseline + LLM-KT, DDP)",
             f"{m:,.0f} M interactions ({p.train_days} day(s)) x epochs {epochs}", base, hours, p.nodes, p,
             "hours = s_per_epoch_per_M x M x (epochs_baseline + kt_ratio x epochs_kt) / (ranks x efficiency) / "
             "3600; compute only: the gradient all-reduce (see figures) is not in the rate",
             f"measured + config epochs + {eff['kind']} DDP efficiency")
    return s, figures


def storage(r: dict, p) -> dict:
    if set(lake.INTERACTION_COLUMNS) != {"user_id", "item_id", *INTERACTION_WIDTHS}:
        raise ValueError("lake.INTERACTION_COLUMNS changed: update INTERACTION_WIDTHS")
    id_bytes = len(str(p.users)) + 4 + len(str(p.items)) + 4
    row = id_bytes + sum(INTERACTION_WIDTHS.values())
    out = {"interactions_row": fig(row, "B/row (uncompressed upper bound)", "derived",
                                   "jobs/core/lake.py INTERACTIONS_SCHEMA widths (benchmarks/capacity.py "
                                   "INTERACTION_WIDTHS); Parquet size not measured by any report")}
    ing = r["ingest"]
    if ing and ing.get("results"):
        big = max(ing["results"], key=lambda x: x["rows"])
        out["csv_row"] = fig(big["csv_mb"] * 1e6 / big["rows"], "B/row (raw CSV input)", "measured",
                             f"ingest.json: results[rows={big['rows']}].csv_mb x 1e6 / rows")
    out["lake_per_day"] = fig(p.events_per_day * row, "B/day", "derived", "events_per_day x interactions_row")
    out["lake_per_year"] = fig(p.events_per_day * row * 365, "B/year", "derived", "lake_per_day x 365")
    fs, prof = r["feast_store"], r["profiles"]
    dim = fs["embedding_dim"] if fs else None
    text = None
    if prof and prof["results"] and prof["results"][0].get("samples"):
        samples = prof["results"][0]["samples"]
        text = sum(len(s.encode()) for s in samples) / len(samples)
    # entity id + text + embedding + source_hash (64 hex) + generator (~32) + two timestamps.
    profile_row = None if dim is None or text is None else 10 + text + 4 * dim + 64 + 32 + 16
    out["profile_row"] = fig(profile_row, "B/row", "derived",
                             "lake.PROFILE_SCHEMA: text (profiles.json: mean UTF-8 bytes of results[0].samples, "
                             "template backend) + 4 x embedding_dim (feast_store.json) + 64 (sha256 hex) + 32 "
                             "(generator, ASSUMED) + 16 (timestamps) + 10 (id)")
    stats_row = 10 + 4 * 8 + 16
    out["stats_row"] = fig(stats_row, "B/row", "derived", "lake.STATS_FEATURES: id + 4 x 8 B + 2 timestamps")
    entities = p.users + p.items
    out["lake_profiles_per_night"] = fig(None if profile_row is None else changed_entities(p) * profile_row,
                                         "B/night", "derived", "changed entities x profile_row (append-only)")
    out["lake_stats_per_night"] = fig(entities * stats_row, "B/night", "derived",
                                      "users + items stats rows per as-of (jobs/publish/stats.py keeps history)")
    online = None if profile_row is None else entities * (profile_row - 10 - 64 + stats_row)
    out["online_store"] = fig(online, "B (payload; Redis key/hash overhead not measured)", "derived",
                              "(users + items) x (profile view: embedding + text + generator + ts; stats view)")
    model = r["cf_zoo"] and next((x for x in r["cf_zoo"]["results"] if x["model"] == p.model), None)
    mbytes = (p.users + p.items) * model["config"]["embedding_dim"] * 4 if model else None
    out["registry_per_version"] = fig(mbytes, "B per registered model version (MLflow artifacts)", "derived",
                                      "(users + items) x embedding_dim (cf_zoo.json) x 4 B float32")
    out["feast_registry"] = fig(None, "B", "", "not measured by any report; holds definitions only, "
                                "independent of row counts")
    return out


def run(p, reports: dict | None = None) -> dict:
    r = reports if reports is not None else load_reports(Path(p.reports))
    prof, prof_figs = profile_step(r, p)
    train, train_figs = train_step(r, p)
    steps = [ingest_step(r, p), prof, embed_step(p), stats_step(r, p), materialize_step(r, p), train]
    known = [s for s in steps if s["hours"] is not None]
    bottleneck = max(known, key=lambda s: s["hours"])["step"] if known else None
    return {
        "parameters": {k: v for k, v in vars(p).items() if k not in ("reports", "out_md", "out_json")},
        "reports_found": sorted(k for k, v in r.items() if v is not None),
        "steps": steps,
        "total_hours_known": round(sum(s["hours"] for s in known), 4),
        "total_cost_usd_known": round(sum(s["cost_usd"] for s in known), 2),
        "not_measured_steps": [s["step"] for s in steps if s["hours"] is None],
        "bottleneck": bottleneck,
        "figures": {"profiles": prof_figs, "training": train_figs},
        "storage": storage(r, p),
    }


def human(value, unit: str = "") -> str:
    if value is None:
        return NOT_MEASURED
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if unit.startswith("B"):
        for scale, name in ((1e15, "PB"), (1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
            if value >= scale:
                return f"{value / scale:,.1f} {name}"
        return f"{value:,.1f} B"
    return f"{value:,.3g}" if isinstance(value, float) and abs(value) < 100 else f"{value:,.0f}"


def hours_text(h: float | None) -> str:
    return NOT_MEASURED if h is None else (f"{h * 60:,.1f} min" if h < 1 else f"{h:,.2f} h")


def to_markdown(res: dict) -> str:
    p = res["parameters"]
    lines = [
        "# Capacity model", "",
        "Generated by `python -m benchmarks.capacity` from the reports under `benchmarks/reports/` "
        f"(found: {', '.join(res['reports_found']) or 'none'}); do not edit by hand. Kinds: measured (a report "
        "field), derived (arithmetic given), quoted (published, not measured here), assumed/config (a parameter "
        "or the project's configuration), not measured (no report holds it; never guessed).", "",
        "## Parameters", "", "| parameter | value |", "|---|---|",
        *[f"| {k} | {v:,} |" if isinstance(v, int | float) else f"| {k} | {v} |" for k, v in p.items()], "",
        f"## Nightly steps on {p['nodes']} nodes x {p['cores_per_node']} cores, {p['gpus']} GPUs", "",
        "| step | work | rate | kind | source | wall time | basis | cost |", "|---|---|---|---|---|---|---|---|",
    ]
    for s in res["steps"]:
        rate = s["rate"]
        value = NOT_MEASURED if rate["value"] is None else f"{human(rate['value'])} {rate['unit']}"
        cost = NOT_MEASURED if s["cost_usd"] is None else f"${s['cost_usd']:,.2f} ({s['nodes_used']} node(s))"
        lines.append(f"| {s['step']} | {s['work']} | {value} | {rate['kind']} | "
                     f"{rate['source']} | {hours_text(s['hours'])} | {s['basis']} | {cost} |")
    lines += ["", "How each wall time is computed:", "", *[f"- **{s['step']}**: {s['note']}" for s in res["steps"]],
              "", f"Sum of the steps with a figure (the DAG runs them one after another): "
              f"{hours_text(res['total_hours_known'])}, ${res['total_cost_usd_known']:,.2f}."]
    if res["not_measured_steps"]:
        lines.append(f"Not in the sum (not measured): {'; '.join(res['not_measured_steps'])}.")
    worst = next((s for s in res["steps"] if s["step"] == res["bottleneck"]), None)
    basis = f" (its wall time rests on: {worst['basis']}; rate source: {worst['rate']['source']})" if worst else ""
    lines += ["", "## Bottleneck", "", f"**{res['bottleneck'] or NOT_MEASURED}** is the longest step with a figure"
              f"{basis}. Steps not measured may be longer. "
              "The model scales each measured rate linearly from a 2-CPU shared machine (load averages in the "
              "sources), so treat every wall time as an order of magnitude.", ""]
    for group, figures in res["figures"].items():
        lines += [f"## Figures: {group}", "", "| figure | value | unit | kind | source |", "|---|---|---|---|---|"]
        lines += [f"| {k} | {human(f['value'], f['unit'])} | {f['unit']} | {f['kind']} | {f['source']} |"
                  for k, f in figures.items()]
        lines.append("")
    tf = res["figures"]["training"]
    if tf["allreduce_bytes_per_step"]["value"]:
        lines += [
            "DDP caveat: ktrec's CF models use dense `nn.Embedding` tables, so DDP replicates "
            f"{human(tf['model_bytes']['value'], 'B')} of parameters on every rank "
            f"({human(tf['replica_memory_per_node']['value'], 'B')} per node with gradients and Adam state at "
            f"{tf['ranks']['value']} ranks) and all-reduces a gradient of the same size every step. At this "
            "catalogue size memory and that traffic, not compute, bound training, "
            "and the compute-only figure above is optimistic by a wide margin. Sharded or sparse embeddings "
            "(not in ktrec) would be needed.", ""]
    lines += ["## Storage", "", "| item | value | kind | source |", "|---|---|---|---|"]
    lines += [f"| {k} | {human(f['value'], f['unit'])} ({f['unit']}) | {f['kind']} | {f['source']} |"
              for k, f in res["storage"].items()]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100_000_000)
    ap.add_argument("--items", type=int, default=10_000_000)
    ap.add_argument("--events-per-day", type=float, default=1e9)
    ap.add_argument("--change-rate", type=float, default=0.01, help="share of users and of items changing nightly")
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--cores-per-node", type=int, default=32)
    ap.add_argument("--gpus", type=int, default=8, help="GPUs in all (spread over the nodes)")
    ap.add_argument("--usd-per-node-hour", type=float, default=4.0, help="placeholder price, not a quote")
    ap.add_argument("--gpu-tokens-per-s", type=float, default=QUOTED_GPU_TOKENS["value"])
    ap.add_argument("--gpu-embed-per-s", type=float, default=QUOTED_GPU_EMBED["value"])
    ap.add_argument("--train-days", type=float, default=1.0, help="days of events each night's training reads")
    ap.add_argument("--ddp-efficiency", type=float, default=0.7, help="used when no ddp.json report exists")
    ap.add_argument("--model", default="bpr")
    ap.add_argument("--reports", default=str(REPORTS))
    ap.add_argument("--out-md", default=str(ROOT / "docs" / "capacity.md"))
    ap.add_argument("--out-json", default=str(REPORTS / "capacity.json"))
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    p = parse_args(argv)
    res = run(p)
    for path, text in ((p.out_json, json.dumps(res, indent=2) + "\n"), (p.out_md, to_markdown(res))):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    for s in res["steps"]:
        print(f"{s['step']}: {hours_text(s['hours'])}")
    print(f"bottleneck: {res['bottleneck']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
