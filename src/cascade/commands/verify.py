"""`cascade verify`: score a file of predictions with the reward verifiers."""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from cascade.commands.paths import check_output_file
from cascade.errors import CascadeError

DESCRIPTION = """\
Score model completions with the same verifiers that compute RL rewards.

--input is a prediction file (.jsonl, .json or .parquet), one record per row:
  id            any id
  prompt        the user text (or "messages": the conversation)
  verifier      which verifier scores it: math, mcq, instruction_following, code, swe,
                tool_call, language_mixing (--verifier overrides it for every row)
  ground_truth  what the verifier checks against (math: the answer string; mcq: the
                letter; swe: {"files": {...}, "gold_patch": "..."}; ...)
  meta          optional extras (mcq: "options"; tool_call: "functions")
  completion    the model's output, reasoning included: only the text after </think>
                is scored, and an unfinished <think> scores 0.

--output gets every input row plus score, passed, details, error and seconds, written
atomically (a temporary file renamed into place). Verification runs in a pool of worker
processes; an item that runs past --timeout scores 0 with error "timeout". A summary
table (pass rate, mean score, errors by reason, throughput) goes to stdout.

Exit status: 0, even when some rows could not be scored, unless --strict is given: then
1 if any row could not be scored (bad_record, unknown_verifier, timeout, crashed,
verifier_error, sandbox_error). Without --strict it is 1 when every row failed for an
infrastructure reason (timeout, crashed, verifier_error, sandbox_error: e.g. the sandbox
could not start a single job), with the first reason on stderr. Where no sandbox that
holds can start for code rows, verify stops before scoring with an error that says why
and how to allow the weak sandbox (CASCADE_SANDBOX=rlimit; see docs/sandbox.md).
A completion without a usable answer (no_answer, no_boxed_answer, ...) is a score of 0,
not a failure. A malformed file (bad JSON, a row without completion)
stops at once with an error naming the file, line and field.
"""

# Errors that mean "this row was not scored", as opposed to "the answer was unusable".
NOT_SCORED = ("bad_record", "unknown_verifier", "timeout", "crashed", "verifier_error", "sandbox_error")
# Of those, the ones where the machinery (sandbox, worker processes) failed, not the data.
INFRASTRUCTURE = ("timeout", "crashed", "verifier_error", "sandbox_error")

EXAMPLES = """\
examples:
  cascade verify --verifier math --input preds.jsonl --output scored.jsonl
  cascade verify --input mixed.jsonl --output scored.jsonl --workers 8 --timeout 10
  cascade verify --input preds.jsonl --output scored.jsonl --strict   # fail on any error
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="score completions with the reward verifiers",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--input", required=True, metavar="FILE", help="prediction records")
    parser.add_argument("--output", required=True, metavar="FILE", help="where scored JSONL goes")
    parser.add_argument(
        "--verifier", metavar="NAME", help="score every row with NAME (default: each row's 'verifier')"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 if any row could not be scored")
    parser.add_argument(
        "--workers", type=int, metavar="N", help="worker processes (default: CPU count)"
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, metavar="S", help="seconds per item (default 30)"
    )
    parser.set_defaults(func=run)


def _read_predictions(path: str, override: str | None) -> list[dict[str, Any]]:
    from cascade.data.io import iter_rows, validate_row
    from cascade.data.records import Prediction

    if not Path(path).is_file():
        raise CascadeError("input file not found", file=path)
    rows = []
    for place, row in iter_rows(path):
        if override:
            row["verifier"] = override
        validate_row(Prediction, row, place)  # structure only; ground truth is the verifier's
        rows.append(row)
    return rows


def _summary(results: list[Any], seconds: float) -> Any:
    from rich.table import Table

    count = len(results)
    passed = sum(r.passed for r in results)
    errors = Counter(r.error.split(":", 1)[0] for r in results if r.error)
    table = Table(title="cascade verify", show_header=False)
    table.add_row("records", str(count))
    table.add_row("passed", f"{passed} ({passed / count:.1%})" if count else "0")
    table.add_row("mean score", f"{sum(r.score for r in results) / count:.4f}" if count else "-")
    table.add_row("errors", str(sum(errors.values())))
    for reason, n in errors.most_common():
        table.add_row(f"  {reason}", str(n))
    table.add_row("time", f"{seconds:.2f} s")
    table.add_row("verifications/s", f"{count / seconds:.1f}" if seconds > 0 else "-")
    return table


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from cascade.data import write_jsonl
    from cascade.verifiers import registered_names
    from cascade.verifiers.batch import score_batch

    if args.verifier and args.verifier not in registered_names():
        known = ", ".join(registered_names())
        raise CascadeError(f"unknown verifier '{args.verifier}'; known verifiers: {known}", field="--verifier")
    if args.workers is not None and args.workers < 1:
        raise CascadeError("must be at least 1", field="--workers")
    if not math.isfinite(args.timeout) or args.timeout <= 0:
        raise CascadeError(f"must be a positive number of seconds, got {args.timeout}", field="--timeout")
    check_output_file(args.output, "--output")  # before scoring: a bad path must not cost the whole run
    rows = _read_predictions(args.input, args.verifier)

    start = time.perf_counter()
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
        disable=not sys.stderr.isatty(),
    )
    with progress:
        task = progress.add_task("verifying", total=len(rows))
        results = score_batch(
            rows,
            [row["completion"] for row in rows],
            workers=args.workers,
            timeout=args.timeout,
            progress=lambda n: progress.advance(task, n),
        )
    seconds = time.perf_counter() - start

    write_jsonl(args.output, ({**row, **result.to_dict()} for row, result in zip(rows, results)))
    Console().print(_summary(results, seconds))
    not_scored = [r for r in results if r.error and r.error.startswith(NOT_SCORED)]
    broken = [r for r in results if r.error and r.error.startswith(INFRASTRUCTURE)]
    if results and len(broken) == len(results):
        print(f"cascade verify: none of the {len(results)} rows could be scored (the machinery, not the "
              f"data, failed); first: {broken[0].error}", file=sys.stderr)
        return 1
    return 1 if args.strict and not_scored else 0
