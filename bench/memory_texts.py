"""What the benchmarks seed: remembered items that read like real ones, and the
percentile they report. Imported by ``turn_overhead.py`` and ``recall.py``."""

from __future__ import annotations

import random

NAMES = ("Maria", "Tom", "Aiko", "Luca", "Priya", "Jonas", "Elena", "Sam", "Noor", "Ben")
RELATIONS = ("sister", "brother", "partner", "best friend", "boss", "neighbour", "daughter", "son")
CITIES = ("Lisbon", "Kyoto", "Toronto", "Berlin", "Nairobi", "Lima", "Oslo", "Hanoi", "Austin")
FOODS = ("green tea", "dark chocolate", "ramen", "lentil soup", "espresso", "mango", "sourdough")
HOBBIES = ("running", "French", "the guitar", "chess", "pottery", "climbing", "watercolour")
PETS = ("cat Miso", "dog Pepper", "parrot Kiwi", "rabbit Clover")
JOBS = ("nurse", "teacher", "software developer", "carpenter", "accountant", "chef")
MONTHS = ("January", "March", "April", "June", "September", "November")
TOPICS = ("the Roman empire", "bird migration", "jazz history", "black holes", "tea")
ALLERGENS = ("peanuts", "shellfish", "gluten", "dairy")
TIMES = ("morning", "evening", "winter", "afternoon")
TEMPLATES = (
    ("preference", "Likes {food}, especially in the {time}."),
    ("fact", "Their {relation} {name} lives in {city}."),
    ("fact", "Works as a {job} and finds the deadlines stressful."),
    ("goal", "Is learning {hobby} and wants to practise every day."),
    ("event", "Went to {city} in {month} for a friend's wedding."),
    ("fact", "Has a {pet} who keeps knocking things over."),
    ("preference", "Cannot eat {allergen}; mentions it whenever food comes up."),
    ("fact", "Is reading a long book about {topic}."),
)


def memory_text(
    rng: random.Random, templates: tuple[tuple[str, str], ...] = TEMPLATES
) -> tuple[str, str]:
    """A (kind, text) pair, e.g. ("fact", "Their sister Aiko lives in Oslo.")."""
    kind, template = rng.choice(templates)
    text = template.format(
        food=rng.choice(FOODS),
        time=rng.choice(TIMES),
        relation=rng.choice(RELATIONS),
        name=rng.choice(NAMES),
        city=rng.choice(CITIES),
        job=rng.choice(JOBS),
        hobby=rng.choice(HOBBIES),
        month=rng.choice(MONTHS),
        pet=rng.choice(PETS),
        allergen=rng.choice(ALLERGENS),
        topic=rng.choice(TOPICS),
    )
    return kind, text


def percentile(samples: list[int], q: float) -> float:
    """Nearest-rank percentile of nanosecond samples, in milliseconds."""
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank] / 1e6
