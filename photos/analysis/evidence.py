"""What each model says about an image, on one scale, and where the models disagree, one answer.

``Evidence`` is one model's claim (a label, its calibrated confidence, the box if any).
``reconcile`` settles what the classifier and the object detector disagree about: one
object is one animal, one vehicle, one flying thing. First the detector's own doubts:
rival boxes over one object are merged (``merge_rival_duplicates``), and a box whose
next-best class is a rival scoring nearly as much is settled by the photo's other boxes
or scored on its margin (``settle_ambiguous``). Then, for every box of a confusable kind,
the classifier is asked about that object: the whole image when the box covers a quarter
of it or more, the box's own crop when it is smaller (at most ``MAX_CROPS`` per image,
the most confident first). The claim with the higher calibrated confidence decides: a
stronger classifier renames the box, a stronger large box removes the contrary
classifier label, and a classifier kind that every box it was asked about contradicts,
each more confidently, is dropped; where both models name the same thing, the two agree
(``agree``). A wrong animal is then not shown when the other model is sure, nor when
the detector itself was not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

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
SAME_OBJECT = 0.7  # IoU of two rival boxes that are one object


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


def _iou(a: Detection, b: Detection) -> float:
    w = max(0.0, min(a.left + a.width, b.left + b.width) - max(a.left, b.left))
    h = max(0.0, min(a.top + a.height, b.top + b.height) - max(a.top, b.top))
    inter = w * h
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


def merge_rival_duplicates(boxes: list[Evidence], kinds: Kinds) -> list[Evidence]:
    """The detector suppresses overlapping boxes per class only, so one animal can come
    as a Cow box and a Horse box. Boxes of rival kinds overlapping by ``SAME_OBJECT``
    are one object: the stronger box stays, with the weaker's class among its
    alternatives (where it was not already, or scored less)."""
    kept: list[Evidence] = []
    for item in sorted(boxes, key=lambda b: -(b.det.score if b.det else 0.0)):
        twin = None
        if item.det is not None:
            twin = next(
                (k for k in kept if k.det is not None and item.name in kinds.rivals(k.name) and _iou(k.det, item.det) >= SAME_OBJECT),
                None,
            )
        if twin is None:
            kept.append(item)
            continue
        others = dict(twin.det.alternatives)
        if others.get(item.name, 0.0) < item.det.score:
            others[item.name] = item.det.score
            twin.det = replace(twin.det, alternatives=tuple(sorted(others.items(), key=lambda x: -x[1])))
        twin.notes.append(f"one object with the {item.name} {item.det.score:.2f} box")
    return [b for b in boxes if any(b is k for k in kept)]


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
    classifier_knows: Callable[[str], bool] = lambda name: True,
) -> tuple[dict[str, float], list[Evidence]]:
    """``general``: the classifier's labels (name -> calibrated 0-100) for the whole
    image; ``boxes``: the detector's evidence; ``crop(det)``: the classifier's calibrated
    labels for that box's crop; ``descendants(name)``: labels under ``name``. Returns
    the classifier labels that stand and the boxes, renamed where the classifier won
    (to the most confident rival; on a tie, the more specific one). ``classifier_knows(name)``:
    whether the classifier has a class for that kind."""
    general = dict(general)
    dropped: set[str] = set()
    boxes = merge_rival_duplicates(boxes, kinds)
    if rescore is not None:
        settle_ambiguous(boxes, kinds, rescore)

    def drop(name: str) -> None:
        for label in {name} | descendants(name):
            if general.pop(label, None) is not None:
                dropped.add(label)

    order = sorted(range(len(boxes)), key=lambda i: -boxes[i].confidence)
    crops_left = MAX_CROPS
    judged: list[tuple[Evidence, dict[str, float], float]] = []  # (box, opinion, its own confidence)
    for i in order:
        item = boxes[i]
        contrary = kinds.rivals(item.name)
        # The classifier cannot contradict a kind it has no class for (ImageNet has no
        # giraffe and no toy kite): its best guess on such a box is not evidence against it.
        if not contrary or item.det is None or not classifier_knows(item.name):
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
        judged.append((item, opinion, item.confidence))
        # what the whole image's opinion lost stays lost; a crop's opinion is its own
        claims = [(opinion[n], kinds.depth(n), n) for n in contrary if n in opinion and not (whole and n in dropped)]
        if not claims:
            continue
        rival_confidence, _, rival = max(claims)
        if rival_confidence > item.confidence and rival_confidence > opinion.get(item.name, 0.0):
            item.notes.append(f"{item.name} {item.confidence:.0f} renamed: the classifier says {rival} {rival_confidence:.0f}")
            item.renamed_from = item.renamed_from or item.name
            item.name, item.confidence = rival, rival_confidence
        elif whole and item.confidence >= rival_confidence:
            drop(rival)
    # Two models that name the same thing independently make it likelier than either
    # alone: 1 - (1 - a)(1 - b). A box the classifier was asked about (the whole image
    # for a large box, its crop for a small one) and that the classifier did not rename
    # takes that opinion with its own; the label takes the whole image's opinion with the
    # detector's own confidence in its strongest such box (each model counted once).
    own = {id(item): confidence for item, _, confidence in judged}
    for item, opinion, confidence in judged:
        if item.name in opinion and item.renamed_from is None:
            item.confidence = agree(confidence, opinion[item.name])
    for name in list(general):
        detector_says = [
            own.get(id(b), b.confidence) for b in boxes if b.det is not None and b.name == name and b.renamed_from is None
        ]
        if detector_says:
            general[name] = agree(general[name], max(detector_says))
    # A classifier kind that every box of a rival kind the classifier was asked about
    # contradicts, each more confidently, does not stand (a tiny box in a corner that was
    # never looked at does not remove the whole image's "Cat").
    asked = {id(item) for item, _, _ in judged}
    for name in [n for n in general if kinds.rivals(n)]:
        if name not in general:
            continue  # dropped with an ancestor
        contrary = kinds.rivals(name)
        kind = [b for b in boxes if id(b) in asked and (b.name in contrary or kinds.related(b.name, name))]
        if (
            kind
            and not any(kinds.related(b.name, name) for b in kind)
            and min(b.confidence for b in kind) >= general[name]
        ):
            drop(name)
    return general, boxes
