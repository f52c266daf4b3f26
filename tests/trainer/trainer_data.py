"""The tiny corpus and spec documents the trainer tests share (imported by conftest and tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TOPICS = [
    ("Apple orchards", "apple trees need cross pollination and cold winters to set fruit"),
    ("Bee keeping", "honey bees live in hives and a queen lays the eggs for the colony"),
    ("Bicycle repair", "a flat tyre is fixed by patching the inner tube after finding the puncture"),
    ("Bread baking", "sourdough bread rises with wild yeast kept alive in a starter"),
    ("Chess openings", "the sicilian defence answers the king pawn with the c pawn"),
    ("Coffee roasting", "green coffee beans turn brown and crack as they roast"),
    ("Compost", "kitchen scraps and dry leaves break down into compost with air and water"),
    ("Copper wiring", "copper conducts electricity well and is used in household wiring"),
    ("Desert plants", "cacti store water in thick stems and survive long droughts"),
    ("Dog training", "puppies learn to sit when rewarded with treats right after the action"),
    ("Earthquakes", "tectonic plates slip along faults and release energy as seismic waves"),
    ("Electric cars", "lithium batteries power electric cars and charge from the grid"),
    ("Fermentation", "lactic acid bacteria ferment cabbage into sauerkraut"),
    ("Glaciers", "glaciers are rivers of ice that carve valleys as they move"),
    ("Guitar tuning", "standard guitar tuning is E A D G B E from low to high"),
    ("Hiking boots", "waterproof hiking boots keep feet dry on muddy mountain trails"),
    ("Honey", "honey never spoils because its sugar content keeps microbes away"),
    ("Ice skating", "figure skaters spin faster by pulling their arms close to the body"),
    ("Jazz history", "jazz grew in new orleans from blues and ragtime"),
    ("Kite flying", "a kite needs steady wind and a long line to climb"),
    ("Lighthouses", "lighthouses guide ships with a rotating lamp and a lens"),
    ("Mushrooms", "mushrooms are the fruiting bodies of fungi growing underground"),
    ("Night sky", "the north star stays nearly fixed while other stars circle it"),
    ("Olive oil", "olives are pressed to extract oil that is graded by acidity"),
    ("Paper making", "paper is made from wood pulp pressed and dried into sheets"),
    ("Penguins", "emperor penguins huddle together to survive the antarctic winter"),
    ("Pottery", "clay is shaped on a wheel and fired in a kiln to harden"),
    ("Rainbows", "rainbows appear when sunlight is refracted inside raindrops"),
    ("Rice farming", "rice grows in flooded paddies that suppress weeds"),
    ("Sailing", "sailors tack against the wind by zig zagging across it"),
    ("Solar panels", "solar panels turn sunlight into electricity with silicon cells"),
    ("Spiders", "spiders spin silk webs to catch flying insects"),
    ("Tea ceremony", "the japanese tea ceremony prepares matcha with a bamboo whisk"),
    ("Tides", "the moon's gravity pulls the oceans and causes two tides a day"),
    ("Tomatoes", "tomato plants need staking and full sun to ripen their fruit"),
    ("Volcanoes", "magma rises through the crust and erupts as lava from volcanoes"),
    ("Watch making", "mechanical watches keep time with a balance wheel and a mainspring"),
    ("Whales", "blue whales are the largest animals and feed on tiny krill"),
    ("Wine making", "grapes are crushed and their juice ferments into wine"),
    ("Yoga", "yoga combines breathing with stretching poses for balance"),
]


def tiny_corpus() -> list[dict[str, str]]:
    docs = []
    for i, (title, fact) in enumerate(TOPICS):
        text = (
            f"{fact.capitalize()}. This guide about {title.lower()} explains the basics for beginners. "
            f"People who study {title.lower()} often say that {fact}. "
            f"Practice and patience matter more than equipment when learning about {title.lower()}."
        )
        docs.append({"id": f"doc{i}", "title": title, "text": text})
    return docs


def spec_document(corpus_path: Path, **sections: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "tiny",
        "source": {"type": "local", "path": str(corpus_path)},
        "cleaning": {"min_chars": 20},
        "querygen": {
            "provider": "offline",
            "queries_per_doc": 2,
            "heldout_fraction": 0.25,
            "offline": {"styles": {"claim": 0.5, "keywords": 0.5, "title": 0.0, "question": 0.0, "cloze": 0.0}},
        },
        "model": {"base": "sentence-transformers/all-MiniLM-L6-v2", "max_seq_length": 64},
        "training": {"max_steps": 2, "batch_size": 8, "checkpoint_steps": 1000},
        "evaluation": {"metric": "ndcg@10"},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(spec.get(key), dict):
            spec[key] = {**spec[key], **value}
        else:
            spec[key] = value
    return spec
