"""What each model says about an image, on one scale, and where the models disagree, one answer.

``Evidence`` is one model's claim (a label, its calibrated confidence, the box if any).
``reconcile`` settles what the classifier and the object detector disagree about: one
object is one animal, one vehicle, one flying thing. For every box of a confusable kind
it asks the classifier about that object: about the whole image when the box covers most
of it, about the box's own crop when the box is small (at most ``MAX_CROPS`` per image,
the most confident first). The claim with the higher calibrated confidence decides: a
stronger classifier renames the box, a stronger box removes the contrary classifier
label, and a classifier label that every box of its kind contradicts more confidently
is dropped. Before that, a box the detector itself was torn about (its next-best class
is a rival kind scoring nearly as much) is settled by the photo's other boxes or scored
on its margin (``settle_ambiguous``). A wrong animal is then not shown when the other
model is sure, nor when the detector was not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .yolo import Detection

# Of these kinds one object is exactly one: a box is a horse or a cow, never both. Beyond
# them, any two animal kinds (or two vehicle kinds) neither of which is under the other
# are rivals: a Cat box and the classifier's Lion, a Car box and its Bus.
CONFUSABLE = (
    frozenset({"Cat", "Dog", "Horse", "Sheep", "Cow", "Elephant", "Bear", "Zebra", "Giraffe", "Bird"}),
    frozenset({"Car", "Truck", "Bus", "Motorcycle", "Bicycle", "Train", "Airplane", "Boat"}),
    frozenset({"Bird", "Kite", "Airplane"}),
    frozenset({"Bear", "Teddy Bear"}),
)
EXCLUSIVE_GROUPS = ("animal", "vehicle")
# Nodes that say what an object is only vaguely: never a rival of a kind.
GENERIC = frozenset({"Animal", "Mammal", "Pet", "Invertebrate", "Vehicle", "Wildlife"})
# A box covering at least this share of the image is the object the classifier looked at.
MAIN_OBJECT_AREA = 0.25
# Smaller boxes are classified on their own crop; at most this many per image.
MAX_CROPS = 3
CROP_MIN_CONFIDENCE = 30.0  # calibrated; fainter boxes are not worth a crop
CROP_MIN_PIXELS = 24  # a crop's shorter side, in the working image
# A box whose next-best class of a rival kind scores at least this share of its own class
# is ambiguous: the detector itself is torn (a grey horse: Cow 0.63, Horse 0.36).
AMBIGUITY = 0.5


@dataclass
class Evidence:
    name: str
    confidence: float  # calibrated, 0-100
    model: str  # "classifier", "detector", "faces", "text", "extra"
    det: Detection | None = None
    renamed_from: str | None = None
    notes: list[str] = field(default_factory=list)


class Kinds:
    """Which labels contradict which: ``rivals(name)`` and ``related(a, b)`` (one is the
    other or under it), from each label's ancestors and class group."""

    def __init__(self, ancestors: dict[str, list[str]], group: Callable[[str], str]):
        self._ancestors = {name: frozenset(parents) for name, parents in ancestors.items()}
        self._by_group: dict[str, set[str]] = {g: set() for g in EXCLUSIVE_GROUPS}
        for name in ancestors:
            g = group(name)
            if g in self._by_group and name not in GENERIC:
                self._by_group[g].add(name)
        self._group = group

    def related(self, a: str, b: str) -> bool:
        return a == b or b in self._ancestors.get(a, ()) or a in self._ancestors.get(b, ())

    def depth(self, name: str) -> int:
        return len(self._ancestors.get(name, ()))

    def rivals(self, name: str) -> frozenset[str]:
        if name in GENERIC:
            return frozenset()
        out: set[str] = set()
        for group in CONFUSABLE:
            if name in group:
                out |= group
        out |= self._by_group.get(self._group(name), set())
        return frozenset(n for n in out if not self.related(n, name))


def agree(a: float, b: float) -> float:
    """Two independent confidences (0-100) in one claim, combined."""
    return 100.0 * (1.0 - (1.0 - a / 100.0) * (1.0 - b / 100.0))


def settle_ambiguous(boxes: list[Evidence], kinds: Kinds, rescore: Callable[[str, float], float]) -> None:
    """Boxes the detector was torn about. When the photo's unambiguous boxes are mostly
    of the rival kind (a herd of horses with one "Cow"), the box takes that kind at the
    detector's score for it; otherwise it keeps its kind at the margin over the rival
    (score minus the rival's), so a coin toss is not shown as a certainty.
    ``rescore(name, raw)`` calibrates a raw detector score for ``name``."""
    torn = {}
    for i, item in enumerate(boxes):
        if item.det is None:
            continue
        contrary = kinds.rivals(item.name)
        rival = next(((n, s) for n, s in item.det.alternatives if n in contrary), None)
        if rival and rival[1] >= AMBIGUITY * item.det.score:
            torn[i] = rival
    context: dict[str, float] = {}
    for i, item in enumerate(boxes):
        if item.det is not None and i not in torn:
            context[item.name] = context.get(item.name, 0.0) + item.det.score
    for i, (rival, rival_score) in torn.items():
        item = boxes[i]
        if context.get(rival, 0.0) > context.get(item.name, 0.0):
            item.notes.append(f"{item.name} {item.det.score:.2f} or {rival} {rival_score:.2f}: the other boxes say {rival}")
            item.renamed_from, item.name = item.name, rival
            item.confidence = rescore(rival, rival_score)
        else:
            item.notes.append(f"{item.name} {item.det.score:.2f} or {rival} {rival_score:.2f}: scored on the margin")
            item.confidence = rescore(item.name, item.det.score - rival_score)


def reconcile(
    general: dict[str, float],
    boxes: list[Evidence],
    crop: Callable[[Detection], dict[str, float]],
    kinds: Kinds,
    descendants: Callable[[str], set[str]],
    rescore: Callable[[str, float], float] | None = None,
) -> tuple[dict[str, float], list[Evidence]]:
    """``general``: the classifier's labels (name -> calibrated 0-100) for the whole
    image; ``boxes``: the detector's evidence; ``crop(det)``: the classifier's calibrated
    labels for that box's crop; ``descendants(name)``: labels under ``name``. Returns
    the classifier labels that stand and the boxes, renamed where the classifier won
    (to the most confident rival; on a tie, the more specific one)."""
    general = dict(general)
    dropped: set[str] = set()
    if rescore is not None:
        settle_ambiguous(boxes, kinds, rescore)

    def drop(name: str) -> None:
        for label in {name} | descendants(name):
            if general.pop(label, None) is not None:
                dropped.add(label)

    order = sorted(range(len(boxes)), key=lambda i: -boxes[i].confidence)
    crops_left = MAX_CROPS
    judged: list[tuple[Evidence, dict[str, float]]] = []
    for i in order:
        item = boxes[i]
        contrary = kinds.rivals(item.name)
        if not contrary or item.det is None:
            continue
        det = item.det
        whole = det.width * det.height >= MAIN_OBJECT_AREA
        if whole:
            opinion = general
        elif crops_left and item.confidence >= CROP_MIN_CONFIDENCE and crop is not None:
            crops_left -= 1
            opinion = crop(det)
        else:
            continue
        judged.append((item, opinion))
        claims = [(opinion[n], kinds.depth(n), n) for n in contrary if n in opinion and n not in dropped]
        if not claims:
            continue
        rival_confidence, _, rival = max(claims)
        if rival_confidence > item.confidence and rival_confidence > opinion.get(item.name, 0.0):
            item.notes.append(f"{item.name} {item.confidence:.0f} renamed: the classifier says {rival} {rival_confidence:.0f}")
            item.renamed_from, item.name, item.confidence = item.name, rival, rival_confidence
        elif whole and item.confidence >= rival_confidence:
            drop(rival)
    # A classifier label of a confusable kind that the boxes of that kind all contradict,
    # each more confidently, does not stand.
    # Two models that name the same thing independently make it likelier than either
    # alone: 1 - (1 - a)(1 - b). The label takes the classifier's whole-image opinion with
    # its strongest box of that name; a box the classifier was asked about (the whole
    # image for a large box, its crop for a small one) takes that opinion with its own.
    for item, opinion in judged:
        if item.name in opinion and item.renamed_from is None:
            item.confidence = agree(item.confidence, opinion[item.name])
    for name in list(general):
        agreeing = [b.confidence for b in boxes if b.det is not None and b.name == name]
        if agreeing:
            general[name] = agree(general[name], max(agreeing))
    for name in [n for n in general if kinds.rivals(n)]:
        if name not in general:
            continue  # dropped with an ancestor
        contrary = kinds.rivals(name)
        kind = [b for b in boxes if b.det is not None and (b.name in contrary or kinds.related(b.name, name))]
        if (
            kind
            and not any(kinds.related(b.name, name) for b in kind)
            and max(b.confidence for b in kind) >= general[name]
        ):
            drop(name)
    return general, boxes
