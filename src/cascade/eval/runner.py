"""`cascade eval`: generate k samples per prompt, score them with the verifiers, and report.

Outputs in ``out_dir``:
- ``<benchmark>.<mode>.jsonl``: one line per (prompt, sample) with id, seed, prompt,
  completion, reasoning, answer, score, details, tokens, finish reason and the sampling
  settings it was drawn with;
- ``<benchmark>.<mode>.judgments.jsonl`` (judged benchmarks: ArenaHard): both games'
  judgements, verdicts and scores per answer;
- ``metrics.json``: ``results`` (avg@k, pass@k, majority@k and the standard error across
  seeds, per benchmark and mode, per category where the benchmark has them; or the win rate
  and its interval), each with its ``status``, its ``flags`` (why it is not comparable with
  the model card) and the run that produced it; ``runs``: the run record of every invocation
  (command line, model, backend, sampling, per-benchmark k and budget, data files with their
  SHA-256, package version, date);
- ``summary.md``: the table beside the model card's published numbers, which appear only
  next to results scored on the card's protocol and data.
Re-running skips finished samples (see ``samples_file``) and refuses to mix in samples drawn
with another temperature, top-p or budget; running a subset of benchmarks into the same
directory replaces those benchmarks' results and keeps the others (both files are written
atomically).

Never a number that was not scored: a benchmark whose verifier failed on most samples, or
whose prompts were all skipped, or a judged benchmark without a judge, is "not scored" (no
number). Prompts whose prompt plus budget exceed the model's context are skipped (not
generated), counted and reported; the run goes on.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Sequence

from cascade.chat.parse import split_reasoning
from cascade.data.io import file_sha256, write_json_atomic, write_text_atomic
from cascade.errors import CascadeError
from cascade.eval.backends.base import CONTEXT_SKIP, Backend, GenOutput, GenRequest
from cascade.eval.benchmarks.base import Benchmark
from cascade.eval.metrics import summarize
from cascade.eval.samples_file import append_rows, exclusive, load_and_repair

ModeChoice = str  # "think" | "no_think" | "both" | "default"


@dataclass
class EvalSettings:
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int | None = None  # None: the benchmark's protocol budget
    mode: ModeChoice = "default"  # default: the benchmark's protocol mode
    limit: int | None = None  # first N prompts only (smoke runs, CPU)
    seed: int = 0  # sample s uses seed + s
    batch_size: int = 64  # requests per backend call (and per fsync)
    workers: int | None = None  # verifier worker processes
    verify_timeout: float = 60.0
    judge: "JudgeSettings | None" = None  # for judged benchmarks (ArenaHard)


@dataclass
class JudgeSettings:
    """A judge model behind an OpenAI-compatible backend, with arena-hard-auto's settings."""

    backend: Backend
    model: str
    max_tokens: int = 4096
    temperature: float = 0.0
    base_url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# The model card's ArenaHard judge (paper arXiv 2512.13607, App. B).
CARD_JUDGE = "gpt-4-turbo-2024-04-09"
# Verifiers that do not score a sample alone: a judge compares it with a baseline afterwards.
JUDGED_VERIFIERS = {"arena_judge"}
# Errors that mean the verifier could not score (as opposed to a wrong or missing answer).
VERIFIER_FAILURES = ("unknown_verifier", "bad_record", "timeout", "crashed", "verifier_error")


def modes_for(bench: Benchmark, choice: ModeChoice) -> list[str]:
    if choice == "default":
        return [bench.mode]
    if choice == "both":
        return ["think", "no_think"]
    return [choice]


def _extracted_answer(details: dict[str, Any]) -> Any:
    """The answer a verifier extracted, for majority voting (None when it has none)."""
    for key in ("extracted", "answer", "letter", "pred"):
        value = details.get(key)
        if isinstance(value, (str, int, float)):
            return str(value)
    return None


def _prompt_text(messages: list[dict[str, Any]]) -> str:
    return next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")


def run_benchmark(
    backend: Backend,
    bench: Benchmark,
    records: Sequence[dict[str, Any]],
    k: int,
    mode: str,
    path: Path,
    settings: EvalSettings,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    on_resume: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Generate and score every missing (prompt, seed) of one benchmark in one mode.

    Returns every row of the file (earlier runs' included). ``on_resume(samples)`` is called
    once with the wanted samples already done, ``on_progress(samples, tokens)`` after each batch.
    """
    sampling = {"temperature": settings.temperature, "top_p": settings.top_p,
                "max_tokens": settings.max_tokens or bench.max_tokens}
    wanted = [(rec, settings.seed + s) for s in range(k) for rec in records]
    with exclusive(path):
        rows = load_and_repair(path)
        _check_same_sampling(rows, sampling, {(rec["id"], seed) for rec, seed in wanted}, path)
        done = {(r["id"], r["seed"]) for r in rows}
        todo = [(rec, seed) for rec, seed in wanted if (rec["id"], seed) not in done]
        if on_resume:
            on_resume(len(wanted) - len(todo))
        for start in range(0, len(todo), settings.batch_size):
            chunk = todo[start:start + settings.batch_size]
            requests = [GenRequest(messages=rec["messages"], enable_thinking=(mode == "think"),
                                   max_tokens=sampling["max_tokens"], temperature=settings.temperature,
                                   top_p=settings.top_p, seed=seed, tools=(rec.get("meta") or {}).get("tools"))
                        for rec, seed in chunk]
            outputs = backend.generate(requests)
            results = _score(bench, chunk, outputs, settings)
            new_rows = [_row(bench, rec, seed, mode, out, res, sampling)
                        for (rec, seed), out, res in zip(chunk, outputs, results)]
            append_rows(path, new_rows)
            rows.extend(new_rows)
            if on_progress:
                on_progress(len(new_rows), sum(o.tokens for o in outputs))
    return rows


def _score(bench: Benchmark, chunk: list[tuple[dict[str, Any], int]], outputs: list[GenOutput],
           settings: EvalSettings) -> list[Any]:
    """Verifier results for the generated samples; skipped and judged ones are not verified."""
    from cascade.verifiers.base import VerifyResult
    from cascade.verifiers.batch import score_batch

    results: list[Any] = [None] * len(chunk)
    todo = [i for i, o in enumerate(outputs) if o.finish_reason != CONTEXT_SKIP]
    for i, o in enumerate(outputs):
        if o.finish_reason == CONTEXT_SKIP:
            reason = o.extra.get("error", "the prompt does not fit the model's context")
            results[i] = VerifyResult(0.0, False, {}, error=f"skipped: {reason}")
    if bench.verifier in JUDGED_VERIFIERS:
        for i in todo:
            results[i] = VerifyResult(0.0, False, {"judged": True})
        return results
    if todo:
        records = [chunk[i][0] for i in todo]
        scored = score_batch(records, [outputs[i].text for i in todo], workers=settings.workers,
                             timeout=max([settings.verify_timeout] + [_code_seconds(r) for r in records]))
        for i, res in zip(todo, scored):
            results[i] = res
    return results


def _code_seconds(record: dict[str, Any]) -> float:
    """A code record's own sandbox budget plus a margin, so that the batch's per-item timeout
    never cuts a verification the sandbox would let finish (LiveCodeBench problems with many
    private tests get the official runner's budget)."""
    if record.get("verifier") != "code":
        return 0.0
    from cascade.verifiers.code import parse_ground_truth, problem_wall_seconds

    try:
        return problem_wall_seconds(parse_ground_truth(record.get("ground_truth"))) + 10.0
    except CascadeError:
        return 0.0  # the verifier reports the bad record itself


def _row(bench: Benchmark, rec: dict[str, Any], seed: int, mode: str, out: GenOutput, res: Any,
         sampling: dict[str, Any]) -> dict[str, Any]:
    reasoning, answer, _finished = split_reasoning(out.text)
    return {"skipped": out.finish_reason == CONTEXT_SKIP,
        "id": rec["id"], "seed": seed, "mode": mode, "prompt": _prompt_text(rec["messages"]),
        "completion": out.text, "reasoning": reasoning, "answer": answer, "score": res.score,
        "passed": res.passed, "details": res.details, "error": res.error, "tokens": out.tokens,
        "finish_reason": out.finish_reason, "extracted": _extracted_answer(res.details),
        "category": (rec.get("meta") or {}).get(bench.category_field) if bench.category_field else None,
        "sampling": sampling,
    }


def _check_same_sampling(rows: list[dict[str, Any]], sampling: dict[str, Any], wanted: set[tuple[Any, int]],
                         path: Path) -> None:
    """Refuse to resume into samples drawn with other settings: the metrics would mix them."""
    for row in rows:
        before = row.get("sampling")
        if not isinstance(before, dict) or (row["id"], row["seed"]) not in wanted:
            continue
        changed = next((key for key in sampling if before.get(key) != sampling[key]), None)
        if changed is None:
            continue
        raise CascadeError(f"finished samples used {changed}={before.get(changed)}, this run asks for "
                           f"{changed}={sampling[changed]}; use another --out (or delete the file) to start over",
                           file=str(path), field=changed)


def benchmark_metrics(rows: list[dict[str, Any]], k: int) -> dict[str, Any]:
    """Scores over the rows that were generated and scored (skipped prompts left out)."""
    skipped = {r["id"] for r in rows if r.get("skipped")}
    rows = [r for r in rows if not r.get("skipped")]
    samples = [{"id": r["id"], "seed": r["seed"], "passed": r["passed"], "answer": r.get("extracted")} for r in rows]
    out: dict[str, Any] = {"n_prompts": len({r["id"] for r in rows}), "k": k, "skipped_prompts": len(skipped)}
    if not rows:
        return {**out, "avg_at_k": None, "pass_at_k": None, "majority_at_k": None, "stderr": None}
    s = summarize(samples, k=k)
    out.update({"avg_at_k": s.avg_at_k, "pass_at_k": s.pass_at_k, "majority_at_k": s.majority_at_k, "stderr": s.stderr,
                "mean_score": sum(r["score"] for r in rows) / len(rows),
                "truncated_share": sum(r["finish_reason"] == "length" for r in rows) / len(rows),
                "mean_tokens": sum(r["tokens"] for r in rows) / len(rows)})
    categories: dict[str, list[dict[str, Any]]] = {}
    for r, smp in zip(rows, samples):
        if r.get("category") is not None:
            categories.setdefault(str(r["category"]), []).append(smp)
    if categories:
        out["categories"] = {c: summarize(v, k=k).avg_at_k for c, v in sorted(categories.items())}
    return out


def lcb_parts(rows: list[dict[str, Any]], records: Sequence[dict[str, Any]], k: int) -> dict[str, Any]:
    """avg@k of each dated part of a LiveCodeBench window (v6 = the v5 part + Feb-May 2025)."""
    part_of = {r["id"]: (r.get("meta") or {}).get("lcb_part") for r in records}
    parts: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if not r.get("skipped") and part_of.get(r["id"]):
            parts.setdefault(part_of[r["id"]], []).append({"id": r["id"], "seed": r["seed"], "passed": r["passed"]})
    return {p: {"n_prompts": len({x["id"] for x in v}), "avg_at_k": summarize(v, k=k).avg_at_k}
            for p, v in sorted(parts.items())}


def assess(bench: Benchmark, metrics: dict[str, Any], rows: list[dict[str, Any]], records: Sequence[dict[str, Any]],
           n_available: int, k: int, sampling: dict[str, Any], mode: str) -> tuple[str, list[str]]:
    """(status, flags): "not scored" when there is no honest number; each flag is a reason the
    number is not comparable with the model card's."""
    flags: list[str] = []
    status = "scored"
    generated = [r for r in rows if not r.get("skipped")]
    if metrics.get("skipped_prompts"):
        flags.append(f"{metrics['skipped_prompts']} prompts skipped: prompt plus budget longer than the context")
    if not generated:
        status = "not scored"
        flags.append("no sample was generated")
    failed = [r for r in generated if str(r.get("error") or "").startswith(VERIFIER_FAILURES)]
    if failed:
        first = str(failed[0]["error"]).split("\n")[0][:120]
        flags.append(f"verifier failed on {len(failed)} of {len(generated)} samples (e.g. {first})")
        if 2 * len(failed) > len(generated):
            status = "not scored"
    if any((r.get("meta") or {}).get("tests") == "public_only" for r in records):
        flags.append("public tests only (the data has no private tests; the card used all tests)")
    if len(records) < n_available:
        flags.append(f"subset: {len(records)} of the {n_available} prompts loaded (--limit)")
    if bench.expected_prompts and n_available != bench.expected_prompts:
        flags.append(f"data covers {n_available} of the {bench.expected_prompts} prompts of the official set")
    if k != bench.k:
        flags.append(f"k={k} (protocol k={bench.k})")
    if sampling["max_tokens"] != bench.max_tokens:
        flags.append(f"budget {sampling['max_tokens']} tokens (protocol {bench.max_tokens})")
    if (sampling["temperature"], sampling["top_p"]) != (0.6, 0.95):
        flags.append(f"temperature {sampling['temperature']}, top-p {sampling['top_p']} (protocol 0.6, 0.95)")
    if mode != bench.mode:
        flags.append(f"mode {mode} (protocol {bench.mode})")
    return status, flags


def published_scores() -> dict[str, Any]:
    return json.loads(resources.files("cascade.eval").joinpath("published.json").read_text())


def _pct(value: float | None) -> str:
    return "–" if value is None or value != value else f"{100 * value:.1f}"


_TAGS = (("public tests only", "public tests only"), ("data covers", "partial data"), ("subset", "subset"),
         ("prompts skipped", "prompts skipped"), ("verifier failed", "verifier errors"), ("judge", "other judge"),
         ("no usable verdict", "verdicts missing"))


def _tags(flags: list[str]) -> list[str]:
    """Short labels of a result's flags for the table's status cell (the notes say them in full)."""
    tags: list[str] = []
    for flag in flags:
        tag = next((t for prefix, t in _TAGS if flag.startswith(prefix)), "other protocol")
        if tag not in tags:
            tags.append(tag)
    return tags


def summary_markdown(metrics: dict[str, dict[str, Any]], model: str) -> str:
    """The results table; the card's numbers only beside results scored on its protocol and data."""
    pub = published_scores()
    cols = pub["columns"]
    lines = [f"# Evaluation of `{model}`", "",
             "pass@1 averaged over k samples (avg@k), in percent, ± standard error across seeds; ArenaHard: win rate "
             "against the baseline with its bootstrap 90% interval. The card's numbers are shown only beside results "
             "on the card's protocol and data; the notes below say why the others are not comparable.", "",
             "| benchmark | mode | k | prompts | avg@k | pass@k | maj@k | status | " + " | ".join(cols) + " |",
             "|---|---|---|---|---|---|---|---|" + "---|" * len(cols)]
    notes: list[str] = []
    for key, m in metrics.items():
        bench, mode = key.rsplit(".", 1)
        flags = m.get("flags", [])
        status = m.get("status", "scored")
        published = pub["scores"].get(bench)
        comparable = status == "scored" and not flags
        if published and comparable:
            pub_cells = [f"{v:.1f}" for v in published]
        elif published:
            pub_cells = ["not comparable"] + ["–"] * (len(cols) - 1)
        else:
            pub_cells = ["–"] * len(cols)
        if status != "scored":
            score, pass_k, maj = "not scored", "–", "–"
        elif "win_rate" in m:
            score = f"{_pct(m['win_rate'])} (-{100 * (m['win_rate'] - m['ci_lower']):.1f} / " \
                    f"+{100 * (m['ci_upper'] - m['win_rate']):.1f})"
            pass_k, maj = "–", "–"
        else:
            score = f"{_pct(m['avg_at_k'])} ± {_pct(m['stderr'])}"
            pass_k, maj = _pct(m["pass_at_k"]), _pct(m["majority_at_k"])
        label = status if status != "scored" or not flags else "; ".join(_tags(flags))
        lines.append(f"| {bench} | {mode} | {m['k']} | {m['n_prompts']} | {score} | {pass_k} | {maj} | {label} | "
                     + " | ".join(pub_cells) + " |")
        notes += [f"- {key}: {flag}" for flag in flags]
    if notes:
        lines += ["", "Notes:", *notes]
    lines += ["", f"Published numbers: {pub['source']}", ""]
    return "\n".join(lines)


def data_files(path: Path) -> dict[str, str]:
    """SHA-256 of a benchmark's data file, or of every file under its data directory."""
    if path.is_file():
        return {str(path): file_sha256(path)}
    if path.is_dir():
        return {str(p): file_sha256(p) for p in sorted(path.rglob("*")) if p.is_file()}
    return {}


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("cascade-rl")
    except Exception:  # not installed as a distribution (a source checkout on PYTHONPATH)
        from cascade import __version__

        return __version__


def run_record(settings: EvalSettings, run_info: dict[str, Any] | None) -> dict[str, Any]:
    """Who ran what, how and when: the part of the record shared by every benchmark."""
    record = {"command": " ".join(sys.argv), "argv": list(sys.argv), **(run_info or {}),
              "sampling": {"temperature": settings.temperature, "top_p": settings.top_p,
                           "max_tokens": settings.max_tokens, "seed": settings.seed, "mode": settings.mode},
              "limit": settings.limit, "package": {"name": "cascade-rl", "version": _package_version()},
              "python": platform.python_version(), "platform": platform.platform(),
              "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "benchmarks": {}}
    if settings.judge is not None:
        record["judge"] = {"model": settings.judge.model, "base_url": settings.judge.base_url,
                           "max_tokens": settings.judge.max_tokens, "temperature": settings.judge.temperature}
    return record


def read_metrics(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(results, runs) of an existing metrics.json; a file from before run records is all results."""
    if not path.exists():
        return {}, []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CascadeError(f"cannot read the existing results ({exc}); move it away to start over",
                           file=str(path)) from None
    if not isinstance(data, dict):
        raise CascadeError("expected a JSON object", file=str(path))
    if "results" in data:
        return dict(data.get("results") or {}), list(data.get("runs") or [])
    return data, []


def evaluate(
    backend: Backend,
    specs: Sequence[tuple[Benchmark, int]],
    out_dir: str | Path,
    *,
    data_dir: str | Path | None = None,
    settings: EvalSettings | None = None,
    model_name: str = "model",
    records_for: Callable[[Benchmark], list[dict[str, Any]]] | None = None,
    progress: bool = True,
    run_info: dict[str, Any] | None = None,
    on_result: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Evaluate every (benchmark, k) in every requested mode; returns this run's metrics keyed
    'bench.mode'. metrics.json and summary.md keep other benchmarks' earlier results."""
    settings = settings or EvalSettings()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    record = run_record(settings, {"model": model_name, **(run_info or {})})
    results, runs = read_metrics(out / "metrics.json")
    run_index = len(runs)
    runs.append(record)
    metrics: dict[str, dict[str, Any]] = {}
    with _Progress(enabled=progress) as bar:
        for bench, k in specs:
            if records_for:
                all_records = records_for(bench)
                data = {}
            else:
                all_records = bench.load(data_dir)
                data = data_files(bench.data_path(data_dir))
            records = all_records[: settings.limit] if settings.limit else all_records
            modes = modes_for(bench, settings.mode)
            budget = settings.max_tokens or bench.max_tokens
            record["benchmarks"][bench.name] = {"k": k, "max_tokens": budget, "modes": modes,
                                                "prompts": len(records), "data_files": data,
                                                "verifier": bench.verifier, "metric": bench.metric}
            for mode in modes:
                task = bar.add(f"{bench.name} [{mode}]", total=len(records) * k)
                path = out / f"{bench.name}.{mode}.jsonl"
                rows = run_benchmark(backend, bench, records, k, mode, path, settings,
                                     on_progress=lambda n, toks, t=task: bar.advance(t, n, toks),
                                     on_resume=lambda n, t=task: bar.resume(t, n))
                wanted = {(r["id"], settings.seed + s) for s in range(k) for r in records}
                rows = [r for r in rows if (r["id"], r["seed"]) in wanted]
                sampling = {"temperature": settings.temperature, "top_p": settings.top_p, "max_tokens": budget}
                if bench.verifier in JUDGED_VERIFIERS:
                    m = judged_metrics(bench, records, rows, k, mode, out, settings)
                else:
                    m = benchmark_metrics(rows, k)
                if any((r.get("meta") or {}).get("lcb_part") for r in records):
                    m["parts"] = lcb_parts(rows, records, k)
                status, flags = assess(bench, m, rows, records, len(all_records), k, sampling, mode)
                m["status"] = "not scored" if m.get("status") == "not scored" else status
                m["flags"] = m.pop("judge_flags", []) + flags
                m["comparable_to_card"] = m["status"] == "scored" and not m["flags"]
                m["protocol"] = {"k": k, "max_tokens": budget, "mode": mode, **{x: sampling[x] for x in
                                                                               ("temperature", "top_p")}}
                m["run"] = run_index
                if m["status"] != "scored":
                    for key in ("avg_at_k", "pass_at_k", "majority_at_k", "stderr", "win_rate", "ci_lower", "ci_upper"):
                        if key in m:
                            m[key] = None
                metrics[f"{bench.name}.{mode}"] = m
                results[f"{bench.name}.{mode}"] = m
                if on_result:
                    on_result(f"{bench.name}.{mode}", m)
    write_json_atomic(out / "metrics.json", {"results": results, "runs": runs})
    write_text_atomic(out / "summary.md", summary_markdown(results, model_name))
    return metrics


def judged_metrics(bench: Benchmark, records: Sequence[dict[str, Any]], rows: list[dict[str, Any]], k: int,
                   mode: str, out: Path, settings: EvalSettings) -> dict[str, Any]:
    """Judge each generated answer against the baseline in both orders, then the win rate."""
    from cascade.eval import arena_judge

    generated = [r for r in rows if not r.get("skipped")]
    m: dict[str, Any] = {"n_prompts": len({r["id"] for r in generated}), "k": k,
                         "skipped_prompts": len({r["id"] for r in rows if r.get("skipped")})}
    if settings.judge is None:
        return {**m, "status": "not scored", "win_rate": None, "ci_lower": None, "ci_upper": None,
                "judge_flags": ["no judge configured (--judge-base-url and --judge-model); not scored"]}
    judge = settings.judge
    by_id = {r["id"]: r for r in records}
    path = out / f"{bench.name}.{mode}.judgments.jsonl"
    with exclusive(path):
        judged = {(j["id"], j["seed"]): j for j in load_and_repair(path) if j.get("judge") == judge.model}
        todo = [r for r in generated if (r["id"], r["seed"]) not in judged]
        for start in range(0, len(todo), settings.batch_size):
            chunk = todo[start:start + settings.batch_size]
            requests = []
            for row in chunk:
                truth = by_id[row["id"]]["ground_truth"]
                for chat in arena_judge.judge_requests(row["prompt"], row.get("answer") or "", truth["baseline"]):
                    requests.append(GenRequest(messages=chat, enable_thinking=False, max_tokens=judge.max_tokens,
                                               temperature=judge.temperature, top_p=1.0, seed=0))
            texts = [o.text if o.finish_reason != CONTEXT_SKIP else "" for o in judge.backend.generate(requests)]
            new = [arena_judge.judgement_row(row, texts[2 * i:2 * i + 2], judge.model,
                                             by_id[row["id"]]["ground_truth"].get("baseline_model", "baseline"))
                   for i, row in enumerate(chunk)]
            append_rows(path, new)
            judged.update({(j["id"], j["seed"]): j for j in new})
    scores = [judged[(r["id"], r["seed"])]["scores"] for r in generated]
    result = arena_judge.win_rate(scores, seed=settings.seed)
    m.update({"win_rate": result.win_rate, "ci_lower": result.lower, "ci_upper": result.upper,
              "n_judged": result.n_questions, "n_no_verdict": result.n_dropped, "n_battles": result.n_battles,
              "judge": judge.model, "baseline": records[0]["ground_truth"].get("baseline_model") if records else None,
              "bootstrap_rounds": arena_judge.BOOTSTRAP_ROUNDS})
    flags = []
    if judge.model.lower() != CARD_JUDGE:
        flags.append(f"judge {judge.model} (the card's judge: {CARD_JUDGE})")
    if result.n_dropped:
        flags.append(f"no usable verdict in one or both orders for {result.n_dropped} of {len(scores)} answers (dropped)")
    if result.n_questions == 0:
        m["status"] = "not scored"
    elif 2 * result.n_dropped > len(scores):
        m["status"] = "not scored"
    m["judge_flags"] = flags
    return m


class _Progress:
    """A rich progress bar with samples done, tokens/s and ETA; silent when disabled."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._tokens: dict[Any, int] = {}
        self._start: dict[Any, float] = {}

    def __enter__(self) -> "_Progress":
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[tps]} tok/s"), TimeRemainingColumn())
            self.bar.__enter__()
        return self

    def add(self, description: str, total: int) -> Any:
        if not self.enabled:
            return description
        task = self.bar.add_task(description, total=total, tps="-")
        self._tokens[task], self._start[task] = 0, time.perf_counter()
        return task

    def resume(self, task: Any, done: int) -> None:
        """Start the bar at the samples an earlier run finished, without counting them as
        this run's speed (the ETA would be wildly optimistic)."""
        if self.enabled:
            self.bar.reset(task, completed=done)
            self._start[task] = time.perf_counter()

    def advance(self, task: Any, n: int, tokens: int) -> None:
        if not self.enabled:
            return
        self._tokens[task] += tokens
        elapsed = max(time.perf_counter() - self._start[task], 1e-9)
        self.bar.update(task, advance=n, tps=f"{self._tokens[task] / elapsed:.0f}")

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)
