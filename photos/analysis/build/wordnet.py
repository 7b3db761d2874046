"""WordNet 3.0 nouns, read straight from the database file ``data.noun``.

ImageNet's class ids are WordNet 3.0 noun synsets (``n02123045`` is offset 02123045
of data.noun), so the hypernyms of each class come from here. Debian's
``wordnet-base`` package installs the file at /usr/share/wordnet/data.noun; NLTK's
downloader needs the internet, this does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PATH = Path("/usr/share/wordnet/data.noun")


@dataclass
class Synset:
    wnid: str
    words: list[str]
    hypernyms: list[str] = field(default_factory=list)


def load(path: Path | str = DEFAULT_PATH) -> dict[str, Synset]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: install Debian's wordnet-base (apt-get install wordnet-base) "
            "or pass the path of WordNet 3.0's data.noun"
        )
    synsets: dict[str, Synset] = {}
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("  "):  # licence header
                continue
            parts = line.split(" | ", 1)[0].split()
            offset, _lexfile, _pos, count_hex = parts[:4]
            count = int(count_hex, 16)
            words = [parts[4 + 2 * i].replace("_", " ") for i in range(count)]
            rest = parts[4 + 2 * count :]
            pointers = int(rest[0])
            hypernyms = []
            for i in range(pointers):
                symbol, target, pos = rest[1 + 4 * i : 4 + 4 * i]
                if symbol in ("@", "@i") and pos == "n":
                    hypernyms.append("n" + target)
            synsets["n" + offset] = Synset("n" + offset, words, hypernyms)
    return synsets


def ancestors(synsets: dict[str, Synset], wnid: str) -> list[str]:
    """Every hypernym of ``wnid``, nearest first (breadth-first over all paths)."""
    seen: list[str] = []
    frontier = list(synsets[wnid].hypernyms)
    while frontier:
        nxt = []
        for node in frontier:
            if node not in seen:
                seen.append(node)
                nxt.extend(synsets[node].hypernyms)
        frontier = nxt
    return seen
