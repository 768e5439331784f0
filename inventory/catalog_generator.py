"""A deterministic, realistic-looking catalog for samples, benchmarks and load tests.

`write_catalog(out, products=N, seed=S)` always writes the same CSV for the same N and S (only
Python's `random.Random(seed)` and the fixed word lists of `catalog_generator.toml`, beside this
module, are used). SKUs are `<prefix><CODE>-<n>` (`HP-000001`); the same N and S give the same
SKUs, so a second file meant to add products, not replace them, takes a `prefix` (`B-` →
`B-HP-000001`); the rest of the file is unchanged.
"""

from __future__ import annotations

import csv
import json
import random
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .catalog_csv import COLUMNS


@dataclass(frozen=True)
class Leaf:
    path: str
    code: str
    nouns: tuple[str, ...]
    brands: tuple[str, ...]
    price_range: tuple[int, int]  # whole units
    sizes: tuple[str, ...] = ()
    materials: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


_WORDS = tomllib.loads(Path(__file__).with_name("catalog_generator.toml").read_text("utf-8"))


def _leaf(entry: dict[str, Any]) -> Leaf:
    low, high = entry["price_range"]
    return Leaf(
        path=entry["path"],
        code=entry["code"],
        nouns=tuple(entry["nouns"]),
        brands=tuple(entry["brands"]),
        price_range=(low, high),
        sizes=tuple(_WORDS["sizes"][entry["sizes"]]) if "sizes" in entry else (),
        materials=tuple(entry.get("materials", ())),
        extra=tuple((key, tuple(values)) for key, values in entry.get("extra", {}).items()),
    )


COLORS: tuple[str, ...] = tuple(_WORDS["colors"])
ADJECTIVES: tuple[str, ...] = tuple(_WORDS["adjectives"])
SENTENCES: tuple[str, ...] = tuple(_WORDS["sentences"])
LEAVES: tuple[Leaf, ...] = tuple(_leaf(entry) for entry in _WORDS["leaves"])


# A prefix keeps SKUs valid (`services.SKU_PATTERN`: 1-64 letters, digits, '-' or '_', starting
# alphanumeric); 48 characters leave room for the longest code (`BOOT-`) and number.
PREFIX_PATTERN = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9_-]{0,47})?$")


def _product(rng: random.Random, number: int, prefix: str = "") -> list[str]:
    leaf = LEAVES[number % len(LEAVES)]
    brand = rng.choice(leaf.brands)
    noun = rng.choice(leaf.nouns)
    color = rng.choice(COLORS)
    metadata: dict[str, str] = {"brand": brand, "color": color}
    if leaf.sizes:
        metadata["size"] = rng.choice(leaf.sizes)
    if leaf.materials:
        metadata["material"] = rng.choice(leaf.materials)
    for key, values in leaf.extra:
        metadata[key] = rng.choice(values)
    name = f"{brand} {rng.choice(ADJECTIVES)} {noun}"
    if "size" in metadata:
        name += f", {color.title()}, {metadata['size']}"
    low, high = leaf.price_range
    price_cents = rng.randint(low, high) * 100 + rng.choice((0, 49, 95, 99))
    description = (
        f"{name} by {brand}"
        + (f" in {metadata['material']}" if "material" in metadata else "")
        + ". "
        + " ".join(rng.sample(SENTENCES, 2))
    )
    stock = rng.choice((0, 2, 5, 8, 12, 20, 35, 50, 80, 120, 250))
    threshold = rng.choice((0, 2, 5, 10))
    active = "false" if rng.random() < 0.03 else "true"
    return [
        f"{prefix}{leaf.code}-{number + 1:06d}",
        name,
        leaf.path,
        f"{price_cents // 100}.{price_cents % 100:02d}",
        "USD",
        str(stock),
        str(threshold),
        active,
        description,
        json.dumps(metadata, separators=(",", ":")),
    ]


def write_catalog(out: IO[str], *, products: int, seed: int, prefix: str = "") -> None:
    if not PREFIX_PATTERN.match(prefix):
        raise ValueError(
            "the SKU prefix must be at most 48 letters, digits, '-' or '_', starting with a "
            "letter or digit"
        )
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for number in range(products):
        writer.writerow(_product(rng, number, prefix))
