"""`cascade eval`: generate k samples per prompt, score them with the verifiers, and report.

Outputs in ``out_dir``:
- ``<benchmark>.<mode>.jsonl``: one line per (prompt, sample) with id, seed, prompt,
  completion, reasoning, answer, score, details, tokens, finish reason and the sampling
  settings it was drawn with;
- ``metrics.json``: avg@k, pass@k, majority@k and the standard error across seeds, per
  benchmark and mode, and per category where the benchmark has them;
- ``summary.md``: the table beside the model card's published numbers.
Re-running skips finished samples (see ``samples_file``) and refuses to mix in samples drawn
with another temperature, top-p or budget.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Sequence

from cascade.chat.parse import split_reasoning
from cascade.errors import CascadeError
from cascade.eval.backends.base import Backend, GenOutput, GenRequest
from cascade.eval.benchmarks.base import Benchmark
from cascade.eval.metrics import summarize
from cascade.eval.samples_file import append_rows, exclusive, load_and_repair, write_json_atomic, write_text_atomic

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
    from cascade.verifiers.batch import score_batch

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
            results = score_batch([rec for rec, _ in chunk], [o.text for o in outputs], workers=settings.workers,
                                  timeout=settings.verify_timeout)
            new_rows = [_row(bench, rec, seed, mode, out, res, sampling)
                        for (rec, seed), out, res in zip(chunk, outputs, results)]
            append_rows(path, new_rows)
            rows.extend(new_rows)
            if on_progress:
                on_progress(len(new_rows), sum(o.tokens for o in outputs))
    return rows


def _row(bench: Benchmark, rec: dict[str, Any], seed: int, mode: str, out: GenOutput, res: Any,
         sampling: dict[str, Any]) -> dict[str, Any]:
    reasoning, answer, _finished = split_reasoning(out.text)
    return {
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
    samples = [{"id": r["id"], "seed": r["seed"], "passed": r["passed"], "answer": r.get("extracted")} for r in rows]
    s = summarize(samples, k=k)
    out: dict[str, Any] = {"n_prompts": s.n_prompts, "k": k, "avg_at_k": s.avg_at_k, "pass_at_k": s.pass_at_k,
                           "majority_at_k": s.majority_at_k, "stderr": s.stderr,
                           "mean_score": sum(r["score"] for r in rows) / len(rows) if rows else float("nan"),
                           "truncated_share": sum(r["finish_reason"] == "length" for r in rows) / len(rows) if rows else 0.0,
                           "mean_tokens": sum(r["tokens"] for r in rows) / len(rows) if rows else 0.0}
    categories: dict[str, list[dict[str, Any]]] = {}
    for r, smp in zip(rows, samples):
        if r.get("category") is not None:
            categories.setdefault(str(r["category"]), []).append(smp)
    if categories:
        out["categories"] = {c: summarize(v, k=k).avg_at_k for c, v in sorted(categories.items())}
    return out


def published_scores() -> dict[str, Any]:
    return json.loads(resources.files("cascade.eval").joinpath("published.json").read_text())


def summary_markdown(metrics: dict[str, dict[str, Any]], model: str) -> str:
    pub = published_scores()
    cols = pub["columns"]
    lines = [f"# Evaluation of `{model}`", "",
             "pass@1 averaged over k samples (avg@k), in percent, ± standard error across seeds.", "",
             "| benchmark | mode | k | prompts | avg@k | pass@k | maj@k | " + " | ".join(cols) + " |",
             "|---|---|---|---|---|---|---|" + "---|" * len(cols)]
    for key, m in metrics.items():
        bench, mode = key.rsplit(".", 1)
        published = pub["scores"].get(bench)
        pub_cells = [f"{v:.1f}" for v in published] if published else ["–"] * len(cols)
        maj = "–" if m["majority_at_k"] is None else f"{100 * m['majority_at_k']:.1f}"
        lines.append(f"| {bench} | {mode} | {m['k']} | {m['n_prompts']} | {100 * m['avg_at_k']:.1f} ± "
                     f"{100 * m['stderr']:.1f} | {100 * m['pass_at_k']:.1f} | {maj} | " + " | ".join(pub_cells) + " |")
    lines += ["", f"Published numbers: {pub['source']}", ""]
    return "\n".join(lines)


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
) -> dict[str, dict[str, Any]]:
    """Evaluate every (benchmark, k) in every requested mode; returns metrics keyed 'bench.mode'."""
    settings = settings or EvalSettings()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics: dict[str, dict[str, Any]] = {}
    with _Progress(enabled=progress) as bar:
        for bench, k in specs:
            records = records_for(bench) if records_for else bench.load(data_dir)
            records = records[: settings.limit] if settings.limit else records
            for mode in modes_for(bench, settings.mode):
                task = bar.add(f"{bench.name} [{mode}]", total=len(records) * k)
                rows = run_benchmark(backend, bench, records, k, mode, out / f"{bench.name}.{mode}.jsonl", settings,
                                     on_progress=lambda n, toks, t=task: bar.advance(t, n, toks),
                                     on_resume=lambda n, t=task: bar.resume(t, n))
                wanted = {(r["id"], settings.seed + s) for s in range(k) for r in records}
                rows = [r for r in rows if (r["id"], r["seed"]) in wanted]
                metrics[f"{bench.name}.{mode}"] = benchmark_metrics(rows, k)
    write_json_atomic(out / "metrics.json", metrics)
    write_text_atomic(out / "summary.md", summary_markdown(metrics, model_name))
    return metrics


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
