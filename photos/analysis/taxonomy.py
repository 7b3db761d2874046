"""Mapping the local models' classes onto Rekognition's vocabularies.

Moderation follows Rekognition's moderation taxonomy (version 7): level-1 categories,
level-2 sub-categories and level-3 labels, each naming its parent. A detected level-3
label also yields its ancestors, as Rekognition does.
"""

from __future__ import annotations

# name -> (parent, level)
MODERATION_TAXONOMY: dict[str, tuple[str, int]] = {
    "Explicit": ("", 1),
    "Explicit Nudity": ("Explicit", 2),
    "Exposed Male Genitalia": ("Explicit Nudity", 3),
    "Exposed Female Genitalia": ("Explicit Nudity", 3),
    "Exposed Buttocks or Anus": ("Explicit Nudity", 3),
    "Exposed Female Nipple": ("Explicit Nudity", 3),
    "Non-Explicit Nudity of Intimate parts and Kissing": ("", 1),
    "Non-Explicit Nudity": ("Non-Explicit Nudity of Intimate parts and Kissing", 2),
    "Exposed Male Nipple": ("Non-Explicit Nudity", 3),
    "Swimwear or Underwear": ("", 1),
    "Female Swimwear or Underwear": ("Swimwear or Underwear", 2),
}

# NudeNet class -> Rekognition moderation label. Classes without an entry (faces,
# feet, belly, armpits, covered anus) are not moderation signals.
NUDENET_MODERATION: dict[str, str] = {
    "MALE_GENITALIA_EXPOSED": "Exposed Male Genitalia",
    "FEMALE_GENITALIA_EXPOSED": "Exposed Female Genitalia",
    "BUTTOCKS_EXPOSED": "Exposed Buttocks or Anus",
    "ANUS_EXPOSED": "Exposed Buttocks or Anus",
    "FEMALE_BREAST_EXPOSED": "Exposed Female Nipple",
    "MALE_BREAST_EXPOSED": "Exposed Male Nipple",
    "FEMALE_BREAST_COVERED": "Female Swimwear or Underwear",
    "FEMALE_GENITALIA_COVERED": "Female Swimwear or Underwear",
    "BUTTOCKS_COVERED": "Female Swimwear or Underwear",
}

FACE_CLASSES = frozenset({"FACE_FEMALE", "FACE_MALE"})

# Label metadata in DetectLabels' shape: parents, categories and aliases.
LABELS: dict[str, dict[str, list[str]]] = {
    "Person": {"parents": [], "categories": ["Person Description"], "aliases": ["Human"]},
    "Head": {"parents": ["Person"], "categories": ["Person Description"], "aliases": []},
    "Face": {"parents": ["Head", "Person"], "categories": ["Person Description"], "aliases": []},
    "Text": {"parents": [], "categories": ["Text and Documents"], "aliases": []},
}


def moderation_with_ancestors(scores: dict[str, float]) -> dict[str, float]:
    """Add every ancestor of each label, at the highest confidence among its children."""
    result = dict(scores)
    for name, confidence in scores.items():
        parent = MODERATION_TAXONOMY[name][0]
        while parent:
            result[parent] = max(result.get(parent, 0.0), confidence)
            parent = MODERATION_TAXONOMY[parent][0]
    return result


def label_name(model_class: str) -> str:
    """'traffic light' / 'traffic_light' -> 'Traffic Light' (Rekognition's casing)."""
    return " ".join(part.capitalize() for part in model_class.replace("_", " ").split())
