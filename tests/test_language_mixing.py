"""Language-mixing detection by writing script."""

from __future__ import annotations

import pytest

from cascade.errors import CascadeError
from cascade.verifiers import get_verifier
from cascade.verifiers.language_mixing import detect_language_mixing, language_mixing_report

EN = "Explain how binary search works."

CASES = [
    # (prompt, response, mixed)
    (EN, "It halves the search interval each step.", False),
    (EN, "It halves the 区间 each step.", True),  # Chinese word in English
    (EN, "Это работает делением пополам.", True),  # Russian answer to English prompt
    (EN, "It is fast 🚀🔥 and simple ✅.", False),  # emoji
    (EN, r"The cost is $O(\log n)$ and $$T(n) = T(n/2) + 1$$.", False),  # LaTeX
    (EN, r"With step size \(\alpha\) and ratio \[\frac{\beta}{\gamma}\] we converge.", False),
    (EN, "Let θ be the angle and π the constant; then σ² is the variance.", False),  # lone Greek symbols
    (EN, "Use ```python\nx = '中文注释'  # コメント\n``` to try it.", False),  # code fence
    (EN, "Call `print('привет')` to test.", False),  # inline code
    (EN, "Costs 3.5 € — 100% done! (ok) #1 @home", False),  # digits, symbols, punctuation
    (EN, "The word λόγος means reason.", True),  # a real Greek word
    (EN, "It works, مرحبا.", True),  # Arabic
    (EN, "यह काम करता है.", True),  # Devanagari
    (EN, "Café, naïve and Straße are still Latin.", False),  # accented Latin
    ("请解释二分查找。", "二分查找每次把区间减半。", False),  # Chinese prompt, Chinese answer
    ("请解释二分查找。", "二分查找 (binary search) 用于 Python 列表。", False),  # Latin terms accepted
    ("请解释二分查找。", "二分查找 работает быстро。", True),  # Cyrillic in a Chinese answer
    ("二分探索を説明してください。", "二分探索は区間を半分にします。", False),  # Japanese: kana + Han
    ("이진 탐색을 설명해 주세요.", "이진 탐색은 범위를 절반으로 줄입니다.", False),  # Korean
    ("Объясни бинарный поиск.", "Бинарный поиск делит массив пополам.", False),  # Russian-Russian
    ("Объясни бинарный поиск.", "Бинарный поиск — это 二分.", True),
    ("1 + 1 = ?", "It is 2.", False),  # prompt without letters counts as Latin
]


@pytest.mark.parametrize(("prompt", "response", "mixed"), CASES)
def test_detection(prompt: str, response: str, mixed: bool) -> None:
    assert detect_language_mixing(prompt, response) is mixed


def test_report_names_the_offenders() -> None:
    report = language_mixing_report(EN, "It halves the 区间 and делит the array.")
    assert report.mixed
    assert report.prompt_scripts == ["latin"]
    assert report.foreign_scripts == ["cyrillic", "han"]
    assert report.foreign_words == ["区间", "делит"]


def test_verifier_sees_the_reasoning_too() -> None:
    verifier = get_verifier("language_mixing")
    record = {"prompt": EN, "ground_truth": None}
    assert verifier.verify("<think>It halves.</think>It halves.", record).score == 1.0
    mixed = verifier.verify("<think>区间 halves</think>It halves.", record)
    assert (mixed.score, mixed.passed, mixed.details["foreign_words"]) == (0.0, False, ["区间"])
    chat = {"messages": [{"role": "system", "content": "Réponds."}, {"role": "user", "content": "Привет"}]}
    assert verifier.verify("Привет!", {**chat, "ground_truth": None}).score == 1.0


def test_verifier_needs_a_prompt() -> None:
    with pytest.raises(CascadeError, match="prompt"):
        get_verifier("language_mixing").verify("hi", {"ground_truth": None})
