"""A small world of things with attributes, shared by the chat and instruction domains.

Answers are composed from attributes, so a "good" answer is checkable: it talks about the
thing that was asked about.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    name: str  # "apple"
    kind: str  # "fruit"
    color: str
    place: str  # where it is found
    use: str  # what people do with it

    def sentences(self) -> list[str]:
        return [
            f"The {self.name} is a {self.kind}.",
            f"It is often {self.color}.",
            f"You can find it {self.place}.",
            f"People use it for {self.use}.",
        ]


# Which field each of ``Topic.sentences()`` states (the first names the thing and its kind).
ATTRIBUTE_OF_SENTENCE = ("kind", "color", "place", "use")


TOPICS: tuple[Topic, ...] = tuple(
    Topic(*row)
    for row in [
        ("apple", "fruit", "red", "on trees", "eating"),
        ("banana", "fruit", "yellow", "in warm lands", "eating"),
        ("lemon", "fruit", "yellow", "on small trees", "drinks"),
        ("carrot", "vegetable", "orange", "in the ground", "soup"),
        ("potato", "vegetable", "brown", "in the ground", "cooking"),
        ("rose", "flower", "red", "in gardens", "gifts"),
        ("tulip", "flower", "pink", "in fields", "gifts"),
        ("oak", "tree", "green", "in forests", "wood"),
        ("pine", "tree", "green", "on hills", "wood"),
        ("dog", "pet", "brown", "in homes", "company"),
        ("cat", "pet", "grey", "in homes", "company"),
        ("horse", "animal", "brown", "on farms", "riding"),
        ("cow", "animal", "black", "on farms", "milk"),
        ("bee", "insect", "yellow", "near flowers", "honey"),
        ("owl", "bird", "brown", "in woods", "watching"),
        ("river", "body of water", "blue", "in valleys", "travel"),
        ("lake", "body of water", "blue", "among hills", "swimming"),
        ("desert", "dry land", "tan", "in hot places", "study"),
        ("moon", "rock in the sky", "white", "in the night sky", "light"),
        ("sun", "star", "yellow", "in the sky", "light"),
        ("train", "vehicle", "red", "on rails", "travel"),
        ("boat", "vehicle", "white", "on water", "travel"),
        ("bike", "vehicle", "blue", "on roads", "travel"),
        ("piano", "instrument", "black", "in halls", "music"),
        ("drum", "instrument", "red", "in bands", "music"),
        ("clock", "tool", "white", "on walls", "time"),
        ("lamp", "tool", "gold", "on desks", "light"),
        ("hammer", "tool", "grey", "in sheds", "building"),
        ("bread", "food", "brown", "in bakeries", "eating"),
        ("cheese", "food", "yellow", "in shops", "eating"),
        ("tea", "drink", "green", "in cups", "drinking"),
        ("milk", "drink", "white", "in jugs", "drinking"),
        ("snow", "weather", "white", "in winter", "play"),
        ("rain", "weather", "grey", "in clouds", "plants"),
        ("map", "paper", "green", "in cars", "finding places"),
        ("kite", "toy", "red", "in parks", "play"),
        ("ship", "vehicle", "grey", "at sea", "trade"),
        ("wolf", "animal", "grey", "in forests", "hunting"),
        ("fox", "animal", "orange", "in woods", "hunting"),
        ("whale", "animal", "blue", "in the sea", "study"),
    ]
)
