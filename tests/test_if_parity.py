"""Parity with the official IFEval and IFBench scorers on their published reference runs.

Every prompt and every instruction, strict and loose, must match the official verdict,
except the disagreements listed below with their reasons. The test fails when any other
disagreement appears, and also when a listed one disappears (so the list stays true).
"""

from __future__ import annotations

import pytest

from cascade.verifiers import nltk_setup
from cascade.verifiers.ifcheck import parity

# (prompt key, instruction id) -> why our verdict differs from the official one.
IFEVAL_EXPECTED_DISAGREEMENTS = {
    ("1122", "keywords:letter_frequency"): (
        "kwargs letter is '#': the official builder replaces a non-letter with a random letter "
        "(drawn anew for strict and loose); we count the '#' as given, deterministically"
    ),
    ("1129", "keywords:letter_frequency"): (
        "kwargs letter is '!': replaced by a random letter in the official run (see 1122)"
    ),
}

_NO_TAGGER = (
    "words:start_verb needs NLTK's averaged_perceptron_tagger_eng, which is not installed "
    "here: we return no verdict (an error) instead of guessing"
)
IFBENCH_EXPECTED_DISAGREEMENTS = (
    {(key, "words:start_verb"): _NO_TAGGER for key in ("257", "258", "259", "260", "261", "262")}
    if not nltk_setup.is_available("averaged_perceptron_tagger_eng")
    else {}
)

# The figures published with the reference outputs, to prove the reference files were read right.
OFFICIAL_FIGURES = {
    "ifeval": {
        "prompt_strict": 415,
        "instruction_strict": 695,
        "prompt_loose": 431,
        "instruction_loose": 713,
    },
    "ifbench": {
        "prompt_strict": 77,
        "instruction_strict": 93,
        "prompt_loose": 88,
        "instruction_loose": 109,
    },
}
SIZES = {"ifeval": (540, 832), "ifbench": (294, 335)}


@pytest.fixture(scope="module")
def reports(shared_data):
    return {
        "ifeval": parity.compare(parity.load_ifeval(shared_data / "ifeval")),
        "ifbench": parity.compare(parity.load_ifbench(shared_data / "ifbench")),
    }


@pytest.mark.parametrize("benchmark", ["ifeval", "ifbench"])
def test_reference_files_give_the_published_official_figures(reports, benchmark) -> None:
    report = reports[benchmark]
    assert (report.prompts, report.instructions) == SIZES[benchmark]
    assert report.official == OFFICIAL_FIGURES[benchmark]


@pytest.mark.parametrize(
    ("benchmark", "expected"),
    [("ifeval", IFEVAL_EXPECTED_DISAGREEMENTS), ("ifbench", IFBENCH_EXPECTED_DISAGREEMENTS)],
)
def test_verdicts_match_the_official_scorer(reports, benchmark, expected) -> None:
    found = {(d.key, d.instruction_id): d for d in reports[benchmark].disagreements}
    unexpected = {k: (d.ours, d.official, d.note) for k, d in found.items() if k not in expected}
    vanished = sorted(set(expected) - set(found))
    assert unexpected == {}, (
        "new disagreements (key, id) -> ((ours strict, loose), (official), note)"
    )
    assert vanished == [], "listed disagreements no longer happen: update the list"


def test_tagger_disagreements_are_errors_not_guesses(reports) -> None:
    for d in reports["ifbench"].disagreements:
        if d.instruction_id == "words:start_verb":
            assert d.ours == (None, None)
            assert "averaged_perceptron_tagger_eng" in d.note


def test_our_figures_differ_only_by_the_listed_disagreements(reports) -> None:
    # IFEval: both random-letter rows are True for us and False/True officially, and both
    # prompts have only that instruction, so strict gains exactly 2 prompts and 2 instructions.
    ours, official = reports["ifeval"].ours, reports["ifeval"].official
    assert ours == {
        **official,
        "prompt_strict": official["prompt_strict"] + 2,
        "instruction_strict": official["instruction_strict"] + 2,
    }
    # IFBench: without the tagger the three start_verb instructions the official run passed
    # (259, 260, 262; each the only instruction of its prompt) are lost, strict and loose.
    if IFBENCH_EXPECTED_DISAGREEMENTS:
        ours, official = reports["ifbench"].ours, reports["ifbench"].official
        assert ours == {k: v - 3 for k, v in official.items()}


def test_the_official_prompt_strict_figure_is_a_random_draw(shared_data) -> None:
    """Hand count on the two responses: for 1122 ('#', at least 4) 14 of the 26 letters occur
    at least 4 times in the lowercased response; for 1129 ('!', at least 6) 20 of 26 occur at
    least 6 times. Both prompts pass every other instruction, 415 prompts pass without them."""
    cases = parity.load_ifeval(shared_data / "ifeval")
    by_key = {c.key: c for c in cases}
    assert parity.random_letter_pass_chance(by_key["1122"], 1) == pytest.approx(14 / 26)
    assert parity.random_letter_pass_chance(by_key["1129"], 0) == pytest.approx(20 / 26)
    distribution = parity.official_prompt_strict_distribution(cases)
    assert distribution == pytest.approx({
        415: (12 / 26) * (6 / 26),
        416: (14 / 26) * (6 / 26) + (12 / 26) * (20 / 26),
        417: (14 / 26) * (20 / 26),
    })
    # The published 415 is the least likely of the three outcomes.
    assert not parity.draws_a_random_letter("keywords:letter_frequency", {"letter": "a"})
    assert parity.draws_a_random_letter("keywords:letter_frequency", {"letter": "#"})
