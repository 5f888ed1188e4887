"""Toy general chat: questions about things, preference pairs, and RLHF prompts.

Preference pairs follow the paper's OffsetBias-style recipe in miniature: the rejected answer
is a fluent, correct answer to a subtly *different* question (about another thing), so the
reward model must learn relevance, not fluency.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from cascade.toyworld.topics import TOPICS, Topic

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


def answer(topic: Topic, rng: random.Random) -> str:
    sentences = topic.sentences()
    return " ".join(sentences[:1] + rng.sample(sentences[1:], 2))


def thinking_target(p: ChatPrompt, rng: random.Random) -> str:
    return f"<think>\nThe user asks about the {p.topic.name}.\n</think>\n{answer(p.topic, rng)}"


def instruct_target(p: ChatPrompt, rng: random.Random) -> str:
    return answer(p.topic, rng)


def preference_pair(p: ChatPrompt, rng: random.Random) -> tuple[str, str]:
    other = rng.choice([t for t in TOPICS if t.name != p.topic.name])
    return answer(p.topic, rng), answer(other, rng)


def ground_truth(p: ChatPrompt) -> dict:
    return {"topic": p.topic.name, "keywords": [p.topic.name, p.topic.kind]}
