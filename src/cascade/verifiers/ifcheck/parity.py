"""Compare our verdicts with the officially scored IFEval and IFBench reference runs.

The reference data (public, not shipped with cascade) has, per benchmark, the inputs, one
model's responses, and the official scorer's strict and loose results:

- IFEval: ``input_data.jsonl`` + ``input_response_data_gpt4_20231107_145030.jsonl`` +
  ``reference_scored/gpt4_20231107/eval_results_{strict,loose}.jsonl``, joined on ``prompt``.
- IFBench: ``IFBench_test.jsonl`` + ``sample_output.jsonl`` + ``eval_results_{strict,loose}.jsonl``,
  joined on ``prompt.strip()`` (the results come from an earlier 294-row test set; one of its
  prompts is a corrupted merge of two prompts and joins nothing: it is scored with the result
  file's own instruction list and no kwargs, and keyed ``unjoined-<row>``).
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cascade.verifiers.ifcheck.evaluate import evaluate
from cascade.verifiers.ifcheck.registry import InstructionError


@dataclass
class Case:
    """One officially scored response with the inputs needed to score it again."""

    key: str
    prompt: str
    response: str
    instruction_ids: list[str]
    kwargs: list[dict[str, Any] | None]
    official_strict: list[bool]
    official_loose: list[bool]


@dataclass
class Disagreement:
    key: str
    instruction_id: str
    ours: tuple[bool | None, bool | None]  # (strict, loose)
    official: tuple[bool, bool]
    note: str = ""


@dataclass
class Report:
    """Prompt- and instruction-level pass counts, ours and official, plus disagreements."""

    prompts: int = 0
    instructions: int = 0
    ours: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIGURES, 0))
    official: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIGURES, 0))
    disagreements: list[Disagreement] = field(default_factory=list)


FIGURES = ("prompt_strict", "instruction_strict", "prompt_loose", "instruction_loose")


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _cases(
    inputs: dict[str, dict[str, Any]],
    responses: dict[str, str],
    strict_path: Path,
    loose_path: Path,
    join: Any,
) -> list[Case]:
    cases = []
    for row, (strict, loose) in enumerate(
        zip(_read_jsonl(strict_path), _read_jsonl(loose_path), strict=True)
    ):
        if strict["prompt"] != loose["prompt"]:
            raise ValueError(f"{strict_path} and {loose_path} differ at row {row}")
        joined = inputs.get(join(strict["prompt"]))
        if joined is None:
            key, ids, kwargs = (
                f"unjoined-{row}",
                strict["instruction_id_list"],
                [None] * len(strict["instruction_id_list"]),
            )
            prompt = strict["prompt"]
        else:
            key, ids, kwargs, prompt = (
                str(joined["key"]),
                joined["instruction_id_list"],
                joined["kwargs"],
                joined["prompt"],
            )
        cases.append(
            Case(
                key=key,
                prompt=prompt,
                response=responses[join(strict["prompt"])],
                instruction_ids=ids,
                kwargs=kwargs,
                official_strict=strict["follow_instruction_list"],
                official_loose=loose["follow_instruction_list"],
            )
        )
    return cases


def load_ifeval(data_dir: Path) -> list[Case]:
    """The 540 officially scored IFEval GPT-4 responses (``data_dir`` = the ifeval folder)."""
    inputs = {r["prompt"]: r for r in _read_jsonl(data_dir / "input_data.jsonl")}
    responses = {
        r["prompt"]: r["response"]
        for r in _read_jsonl(data_dir / "input_response_data_gpt4_20231107_145030.jsonl")
    }
    scored = data_dir / "reference_scored" / "gpt4_20231107"
    return _cases(
        inputs,
        responses,
        scored / "eval_results_strict.jsonl",
        scored / "eval_results_loose.jsonl",
        lambda p: p,
    )


def load_ifbench(data_dir: Path) -> list[Case]:
    """The 294 officially scored IFBench sample responses (``data_dir`` = the ifbench folder)."""
    inputs = {r["prompt"].strip(): r for r in _read_jsonl(data_dir / "IFBench_test.jsonl")}
    responses = {
        r["prompt"].strip(): r["response"] for r in _read_jsonl(data_dir / "sample_output.jsonl")
    }
    return _cases(
        inputs,
        responses,
        data_dir / "eval_results_strict.jsonl",
        data_dir / "eval_results_loose.jsonl",
        str.strip,
    )


def compare(cases: list[Case]) -> Report:
    """Score every case again and tally both sides."""
    report = Report()
    for case in cases:
        n = len(case.instruction_ids)
        note = ""
        try:
            verdicts = evaluate(case.response, case.instruction_ids, case.kwargs, case.prompt)
            ours_strict, ours_loose = verdicts.strict, verdicts.loose
            note = "; ".join(verdicts.errors)
        except InstructionError as exc:
            ours_strict, ours_loose, note = [None] * n, [None] * n, str(exc)
        report.prompts += 1
        report.instructions += n
        for side, strict, loose in (
            (report.ours, ours_strict, ours_loose),
            (report.official, case.official_strict, case.official_loose),
        ):
            side["prompt_strict"] += all(v is True for v in strict)
            side["prompt_loose"] += all(v is True for v in loose)
            side["instruction_strict"] += sum(v is True for v in strict)
            side["instruction_loose"] += sum(v is True for v in loose)
        for i, instruction_id in enumerate(case.instruction_ids):
            ours = (ours_strict[i], ours_loose[i])
            official = (case.official_strict[i], case.official_loose[i])
            if ours != official:
                report.disagreements.append(
                    Disagreement(case.key, instruction_id, ours, official, note)
                )
    return report


def draws_a_random_letter(instruction_id: str, kwargs: dict[str, Any] | None) -> bool:
    """Whether the official scorer replaces this instruction's argument with a random letter
    (``keywords:letter_frequency`` whose ``letter`` is not one ASCII letter, e.g. ``#``)."""
    letter = (kwargs or {}).get("letter")
    ok = isinstance(letter, str) and len(letter.strip()) == 1 and letter.strip().isascii() and letter.strip().isalpha()
    return instruction_id == "keywords:letter_frequency" and not ok


def random_letter_pass_chance(case: Case, index: int) -> float:
    """The chance that instruction ``index`` of ``case`` passes strict scoring when, as in the
    official builder, its letter is ``random.choice(string.ascii_letters)`` (then lowercased:
    26 outcomes, each with chance 2/52)."""
    kwargs = dict(case.kwargs[index] or {})
    passes = 0
    for letter in string.ascii_lowercase:
        kwargs["letter"] = letter
        verdicts = evaluate(case.response, [case.instruction_ids[index]], [kwargs], case.prompt)
        passes += verdicts.strict[0] is True
    return passes / len(string.ascii_lowercase)


def official_prompt_strict_distribution(cases: list[Case]) -> dict[int, float]:
    """The distribution of the official prompt-strict count over the official scorer's random
    letters: every other verdict is the official one (deterministic), and each instruction that
    draws a random letter passes with :func:`random_letter_pass_chance`. A published figure is
    one draw from this distribution, so a deterministic scorer can only match it by luck."""
    distribution = {0: 1.0}
    for case in cases:
        drawn = [i for i, (iid, kw) in enumerate(zip(case.instruction_ids, case.kwargs))
                 if draws_a_random_letter(iid, kw)]
        fixed_pass = all(v for i, v in enumerate(case.official_strict) if i not in drawn)
        chance = 0.0
        if fixed_pass:
            chance = 1.0
            for i in drawn:
                chance *= random_letter_pass_chance(case, i)
        shifted: dict[int, float] = {}
        for count, p in distribution.items():
            if chance < 1.0:
                shifted[count] = shifted.get(count, 0.0) + p * (1.0 - chance)
            if chance > 0.0:
                shifted[count + 1] = shifted.get(count + 1, 0.0) + p * chance
        distribution = shifted
    return dict(sorted(distribution.items()))
