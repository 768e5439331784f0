"""A deterministic, realistic-looking catalog for samples, benchmarks and load tests.

`write_catalog(out, products=N, seed=S)` always writes the same CSV for the same N and S (only
Python's `random.Random(seed)` and fixed word lists are used). SKUs are `<prefix><CODE>-<n>`
(`HP-000001`); the same N and S give the same SKUs, so a second file meant to add products, not
replace them, takes a `prefix` (`B-` → `B-HP-000001`); the rest of the file is unchanged.
"""

from __future__ import annotations

import csv
import json
import random
import re
from dataclasses import dataclass
from typing import IO

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


COLORS = (
    "black", "white", "grey", "navy", "red", "green", "blue", "beige", "olive", "brown",
    "silver", "charcoal",
)  # fmt: skip
ADJECTIVES = (
    "Classic", "Essential", "Pro", "Compact", "Premium", "Everyday", "Lightweight", "Heritage",
    "Urban", "Trail", "Studio", "Signature", "Modern", "Rugged", "Slim", "Deluxe",
)  # fmt: skip
CLOTHING_SIZES = ("XS", "S", "M", "L", "XL", "XXL")
SHOE_SIZES = tuple(str(size) for size in range(37, 47))

LEAVES: tuple[Leaf, ...] = (
    Leaf(
        "Electronics/Audio/Headphones",
        "HP",
        (
            "Over-Ear Headphones",
            "Wireless Earbuds",
            "Noise-Cancelling Headphones",
            "In-Ear Monitors",
        ),
        ("Sonora", "Audiq", "Kestrel"),
        (29, 349),
        extra=(("connectivity", ("bluetooth", "wired", "bluetooth + wired")),),
    ),
    Leaf(
        "Electronics/Audio/Speakers",
        "SPK",
        ("Bookshelf Speaker", "Portable Speaker", "Smart Speaker", "Soundbar"),
        ("Sonora", "Boomfield", "Audiq"),
        (39, 599),
        extra=(("power_w", ("10", "20", "40", "60", "120")),),
    ),
    Leaf(
        "Electronics/Computers/Laptops",
        "LAP",
        ("13-inch Laptop", "15-inch Laptop", "2-in-1 Laptop", "Ultrabook"),
        ("Northbook", "Vertex", "Lumen"),
        (499, 2499),
        extra=(("ram_gb", ("8", "16", "32")), ("storage_gb", ("256", "512", "1024"))),
    ),
    Leaf(
        "Electronics/Computers/Keyboards",
        "KB",
        ("Mechanical Keyboard", "Wireless Keyboard", "Ergonomic Keyboard"),
        ("Keystone", "Vertex", "Clackworks"),
        (29, 219),
        extra=(("layout", ("US", "UK", "DE")), ("switch", ("red", "brown", "blue"))),
    ),
    Leaf(
        "Electronics/Computers/Mice",
        "MS",
        ("Wireless Mouse", "Gaming Mouse", "Vertical Mouse", "Trackball"),
        ("Keystone", "Vertex"),
        (15, 129),
        extra=(("dpi", ("1600", "3200", "16000")),),
    ),
    Leaf(
        "Electronics/Phones/Cases",
        "CASE",
        ("Silicone Case", "Leather Folio Case", "Clear Case", "Rugged Case"),
        ("Shellcraft", "Guardly"),
        (9, 59),
        materials=("silicone", "leather", "polycarbonate", "TPU"),
        extra=(("fits", ("Phone 15", "Phone 15 Pro", "Phone 16", "Pixel 9")),),
    ),
    Leaf(
        "Electronics/Phones/Chargers",
        "CHG",
        ("USB-C Charger", "Wireless Charging Pad", "Car Charger", "Power Bank"),
        ("Voltic", "Guardly"),
        (12, 89),
        extra=(("watts", ("20", "30", "45", "65", "100")),),
    ),
    Leaf(
        "Clothing/Men/T-Shirts",
        "MTS",
        ("Crew Neck T-Shirt", "V-Neck T-Shirt", "Pocket T-Shirt", "Long Sleeve T-Shirt"),
        ("Northway", "Loom & Co", "Basecamp"),
        (12, 45),
        sizes=CLOTHING_SIZES,
        materials=("cotton", "organic cotton", "linen blend"),
    ),
    Leaf(
        "Clothing/Men/Jackets",
        "MJK",
        ("Rain Jacket", "Down Jacket", "Denim Jacket", "Fleece Jacket"),
        ("Northway", "Basecamp", "Fjordline"),
        (59, 349),
        sizes=CLOTHING_SIZES,
        materials=("nylon", "denim", "wool", "recycled polyester"),
    ),
    Leaf(
        "Clothing/Women/Dresses",
        "WDR",
        ("Wrap Dress", "Shirt Dress", "Midi Dress", "Knit Dress"),
        ("Loom & Co", "Marigold"),
        (39, 189),
        sizes=CLOTHING_SIZES,
        materials=("viscose", "cotton", "linen", "wool blend"),
    ),
    Leaf(
        "Clothing/Women/Sweaters",
        "WSW",
        ("Cashmere Sweater", "Cardigan", "Turtleneck", "Cable-Knit Sweater"),
        ("Marigold", "Fjordline"),
        (45, 229),
        sizes=CLOTHING_SIZES,
        materials=("cashmere", "merino wool", "cotton"),
    ),
    Leaf(
        "Clothing/Shoes/Sneakers",
        "SNK",
        ("Running Shoes", "Court Sneakers", "Canvas Sneakers", "Trail Runners"),
        ("Stride", "Basecamp"),
        (49, 179),
        sizes=SHOE_SIZES,
        materials=("mesh", "leather", "canvas"),
    ),
    Leaf(
        "Clothing/Shoes/Boots",
        "BOOT",
        ("Chelsea Boots", "Hiking Boots", "Work Boots", "Ankle Boots"),
        ("Stride", "Fjordline"),
        (79, 289),
        sizes=SHOE_SIZES,
        materials=("leather", "suede", "nubuck"),
    ),
    Leaf(
        "Home/Kitchen/Cookware",
        "CKW",
        ("Cast Iron Skillet", "Saucepan", "Dutch Oven", "Nonstick Frying Pan"),
        ("Hearthstone", "Copperleaf"),
        (19, 249),
        materials=("cast iron", "stainless steel", "copper", "enamel"),
        extra=(("diameter_cm", ("20", "24", "28", "30")),),
    ),
    Leaf(
        "Home/Kitchen/Knives",
        "KNF",
        ("Chef's Knife", "Paring Knife", "Bread Knife", "Santoku Knife"),
        ("Hearthstone", "Edgewell"),
        (15, 199),
        materials=("carbon steel", "stainless steel", "damascus steel"),
    ),
    Leaf(
        "Home/Furniture/Chairs",
        "CHR",
        ("Office Chair", "Dining Chair", "Lounge Chair", "Bar Stool"),
        ("Oakhaus", "Linea"),
        (59, 899),
        materials=("oak", "walnut", "steel", "mesh"),
    ),
    Leaf(
        "Home/Furniture/Lamps",
        "LMP",
        ("Desk Lamp", "Floor Lamp", "Pendant Lamp", "Table Lamp"),
        ("Linea", "Lumen"),
        (25, 349),
        materials=("brass", "glass", "linen", "steel"),
    ),
    Leaf(
        "Sports/Outdoors/Tents",
        "TNT",
        ("2-Person Tent", "4-Person Tent", "Ultralight Tent", "Family Tent"),
        ("Fjordline", "Summit"),
        (89, 699),
        extra=(("season", ("3-season", "4-season")), ("weight_kg", ("1.2", "2.4", "4.8"))),
    ),
    Leaf(
        "Sports/Outdoors/Backpacks",
        "BPK",
        ("Daypack", "Hiking Backpack", "Travel Backpack", "Hydration Pack"),
        ("Summit", "Basecamp"),
        (35, 259),
        extra=(("volume_l", ("18", "24", "35", "50", "65")),),
    ),
    Leaf(
        "Sports/Fitness/Yoga Mats",
        "YOGA",
        ("Yoga Mat", "Travel Yoga Mat", "Cork Yoga Mat"),
        ("Flowline", "Summit"),
        (19, 119),
        materials=("natural rubber", "cork", "TPE"),
        extra=(("thickness_mm", ("3", "4", "6")),),
    ),
    Leaf(
        "Sports/Fitness/Dumbbells",
        "DMB",
        ("Hex Dumbbell", "Adjustable Dumbbell", "Neoprene Dumbbell"),
        ("Ironworks", "Flowline"),
        (9, 399),
        extra=(("weight_kg", ("2", "5", "10", "20", "24")),),
    ),
)

SENTENCES = (
    "Built to last with carefully chosen materials.",
    "Designed for everyday use at home, at work and on the go.",
    "Backed by a two-year warranty.",
    "Easy to clean and simple to care for.",
    "A customer favourite for its comfort and value.",
    "Ships in plastic-free packaging.",
    "Tested by our team over months of real use.",
    "Pairs well with the rest of the collection.",
)


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
