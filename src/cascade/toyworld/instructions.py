"""Toy instruction following: short requests with IFEval-taxonomy constraints.

Constraints use the official IFEval instruction ids and kwargs, so the real IF verifiers
check them. Only combinations that can all hold at once are generated (for example
``english_lowercase`` is never paired with a title, whose checker is case-sensitive).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from cascade.toyworld.topics import TOPICS, Topic

END_PHRASES = ["Is there anything else I can help with?", "Hope this helps."]
REQUESTS = ["Write a short note about the {t}.", "Describe the {t}.", "Tell me about the {t}."]


@dataclass
class Constraint:
    instruction_id: str
    kwargs: dict[str, Any]
    text: str  # what the prompt says
    apply: Callable[[list[str], Topic], list[str]]  # rewrites the answer sentences
    group: str = ""  # constraints of the same group are never combined
    order: int = 50  # application order: content edits first, casing and wrapping last


@dataclass(frozen=True)
class IfProblem:
    key: str
    prompt: str
    instruction_id_list: tuple[str, ...]
    kwargs: tuple[dict[str, Any], ...]
    response: str
    topic: str = field(default="")


def _constraints(rng: random.Random, topic: Topic) -> list[Constraint]:
    end = rng.choice(END_PHRASES)
    words = [topic.kind.split()[-1], topic.color]
    limit = 0  # set from the finished answer, see generate()
    return [
        Constraint("change_case:english_lowercase", {},
                   "Your entire response should be in English, and in all lowercase letters.",
                   lambda s, t: [x.lower() for x in s], group="case", order=90),
        Constraint("change_case:english_capital", {},
                   "Your entire response should be in English and in all capital letters.",
                   lambda s, t: [x.upper() for x in s], group="case", order=90),
        Constraint("punctuation:no_comma", {}, "Do not use any commas in your response.",
                   lambda s, t: [x.replace(",", "") for x in s], order=80),
        Constraint("keywords:existence", {"keywords": words},
                   f"Include the keywords {words[0]} and {words[1]} in the response.",
                   lambda s, t, w=words: s + [f"Think of {w[0]} and {w[1]}."], order=10),
        Constraint("startend:end_checker", {"end_phrase": end},
                   f"Finish your response with this exact phrase: {end}",
                   lambda s, t, e=end: s + [e], group="case_sensitive_end", order=95),
        Constraint("detectable_format:title", {},
                   "Your answer must contain a title, wrapped in double angular brackets, such as <<my title>>.",
                   lambda s, t: [f"<<{t.name.title()} Facts>>"] + s, group="case_sensitive_title", order=96),
        Constraint("length_constraints:number_words", {"relation": "less than", "num_words": limit},
                   f"Answer with less than {limit} words.",
                   lambda s, t: s[:3], group="length", order=20),
        Constraint("startend:quotation", {}, "Wrap your entire response with double quotation marks.",
                   lambda s, t: ['"' + s[0]] + s[1:-1] + [s[-1] + '"'] if len(s) > 1 else ['"' + s[0] + '"'],
                   group="wrap", order=99),
    ]


# Casing rewrites text the case-sensitive checks (title, end phrase) look at, so they exclude each other.
_CONFLICTS = {("case", "case_sensitive_end"), ("case", "case_sensitive_title"),
              ("case_sensitive_end", "wrap")}


def _compatible(chosen: list[Constraint], c: Constraint) -> bool:
    for other in chosen:
        if other.instruction_id == c.instruction_id or (c.group and other.group == c.group):
            return False
        if (other.group, c.group) in _CONFLICTS or (c.group, other.group) in _CONFLICTS:
            return False
    return True


def generate(rng: random.Random, n: int) -> list[IfProblem]:
    out: list[IfProblem] = []
    for _ in range(n):
        topic = rng.choice(TOPICS)
        pool = _constraints(rng, topic)
        rng.shuffle(pool)
        chosen: list[Constraint] = []
        for c in pool:
            if len(chosen) == rng.choice([1, 2, 2]):
                break
            if _compatible(chosen, c):
                chosen.append(c)
        request = rng.choice(REQUESTS).format(t=topic.name)
        sentences = topic.sentences()
        for c in sorted(chosen, key=lambda c: c.order):
            sentences = c.apply(sentences, topic)
        # A title sits on its own line, as a human would write it.
        if any(c.instruction_id == "detectable_format:title" for c in chosen):
            response = sentences[0] + "\n" + " ".join(sentences[1:])
        else:
            response = " ".join(sentences)
        for c in chosen:
            if c.instruction_id == "length_constraints:number_words":
                # The limit is set from the finished answer, so the target always obeys it
                # with a margin of 4 to 8 words (IFEval counts \w+ runs).
                limit = 5 * ((len(re.findall(r"\w+", response)) + 3) // 5 + 1)
                c.kwargs["num_words"] = limit
                c.text = f"Answer with less than {limit} words."
        prompt = " ".join([request] + [c.text for c in chosen])
        out.append(IfProblem(
            key=prompt, prompt=prompt,
            instruction_id_list=tuple(c.instruction_id for c in chosen),
            kwargs=tuple(c.kwargs for c in chosen), response=response, topic=topic.name,
        ))
    return out


def thinking_target(p: IfProblem) -> str:
    rules = "; ".join(i.split(":")[1].replace("_", " ") for i in p.instruction_id_list)
    return f"<think>\nTopic: {p.topic}. Rules: {rules}.\n</think>\n{p.response}"
