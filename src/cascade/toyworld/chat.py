"""Toy general chat: questions about things, preference pairs, and RLHF prompts.

Preference pairs follow the paper's OffsetBias-style recipe in miniature: the rejected answer
is a fluent, correct answer to a subtly *different* question (about another thing), so the
reward model must learn relevance, not fluency. A third pair per prompt rejects an on-topic
answer that states one false fact, so the reward model also learns the facts (the paper's
RLHF lowers hallucination); the eval check asks for both: the right thing, and only true
facts about it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from cascade.toyworld.topics import ATTRIBUTE_OF_SENTENCE, TOPICS, Topic

QUESTIONS = [
    "Tell me about the {t}.",
    "What is the {t}?",
    "What do you know about the {t}?",
    "Describe the {t} in a few words.",
    "Can you explain what the {t} is?",
    "Give me some facts about the {t}.",
    "I want to learn about the {t}.",
    "Say something about the {t}.",
    "What can you tell me about the {t}?",
    "Please describe the {t}.",
]


@dataclass(frozen=True)
class ChatPrompt:
    key: str
    prompt: str
    topic: Topic


def generate(rng: random.Random, n: int) -> list[ChatPrompt]:
    out = []
    for _ in range(n):
        topic = rng.choice(TOPICS)
        prompt = rng.choice(QUESTIONS).format(t=topic.name)
        out.append(ChatPrompt(prompt, prompt, topic))
    return out


def _answer_sentences(rng: random.Random) -> list[int]:
    """Which of ``Topic.sentences()`` an answer states: the first (the thing and its kind),
    then two of the three attribute sentences."""
    return rng.sample(range(1, len(ATTRIBUTE_OF_SENTENCE)), 2)


def answer(topic: Topic, rng: random.Random) -> str:
    sentences = topic.sentences()
    return " ".join([sentences[0]] + [sentences[i] for i in _answer_sentences(rng)])


def thinking_target(p: ChatPrompt, rng: random.Random) -> str:
    return f"<think>\nThe user asks about the {p.topic.name}.\n</think>\n{answer(p.topic, rng)}"


def instruct_target(p: ChatPrompt, rng: random.Random) -> str:
    return answer(p.topic, rng)


def hallucinated_answer(topic: Topic, rng: random.Random) -> str:
    """An on-topic answer with one false fact: one of its attribute sentences carries the
    value some other thing has (a wrong color, place or use)."""
    true = topic.sentences()
    picked = _answer_sentences(rng)
    wrong = rng.choice(picked)
    field = ATTRIBUTE_OF_SENTENCE[wrong]
    value = rng.choice(sorted({getattr(t, field) for t in TOPICS} - {getattr(topic, field)}))
    false = replace(topic, **{field: value}).sentences()
    return " ".join([true[0]] + [false[i] if i == wrong else true[i] for i in picked])


PAIR_KINDS = ("off_topic", "hallucinated")


def preference_pair(p: ChatPrompt, rng: random.Random, kind: str = "off_topic") -> tuple[str, str]:
    """(chosen, rejected). ``off_topic``: the rejected answer is a correct answer about
    another thing (OffsetBias-style: fluent, wrong question). ``hallucinated``: it is about
    the right thing but states one false fact."""
    if kind == "hallucinated":
        return answer(p.topic, rng), hallucinated_answer(p.topic, rng)
    other = rng.choice([t for t in TOPICS if t.name != p.topic.name])
    return answer(p.topic, rng), answer(other, rng)


def ground_truth(p: ChatPrompt) -> dict:
    return {"topic": p.topic.name, "keywords": [p.topic.name, p.topic.kind], "facts": p.topic.sentences()}
