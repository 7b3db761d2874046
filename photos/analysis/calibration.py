"""Every model's raw score mapped onto one scale: the chance, in percent, that the label is right.

The maps are fitted on the fit half of the evaluation set (``make calibrate``,
``benchmarks/quality/``) and stored in ``data/calibration.json``: for each model
(``classifier``, ``detector``, ``faces``) and class group (``person``, ``animal``,
``vehicle``, ``object``), knots of a monotone map from the raw score (0-1) to a
confidence (0-100). The method is Platt scaling: a logistic regression of "was this
label right" on the logit of the raw score (``logistic``), with a weak prior towards the
identity and each photo's samples capped in weight, so one photo of 20 cars does not
make the vehicle map. With a few hundred samples per model, a two-parameter map
generalises where isotonic regression (``isotonic``, kept for comparison) overfits its
steps (Niculescu-Mizil and Caruana, "Predicting good probabilities with supervised
learning", 2005). A group with too few fitted samples uses the model's map over all
groups (``*``).

So a Person at 80 from the detector and a Cat at 80 from the classifier were both right
about 80 times in 100 on the fit photos, and one display threshold means the same for
every model.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data" / "calibration.json"
GROUPS = ("person", "animal", "vehicle", "object")
GROUP_ROOTS = {"Person": "person", "Face": "person", "Head": "person", "Animal": "animal", "Vehicle": "vehicle"}


def group_of(name: str, parents: list[str]) -> str:
    """A label's class group, from the label and its ancestors."""
    for node in (name, *parents):
        if node in GROUP_ROOTS:
            return GROUP_ROOTS[node]
    return "object"


class Calibration:
    def __init__(self, maps: dict[str, dict[str, list[list[float]]]]):
        self._maps = {
            model: {group: (np.array([k[0] for k in knots]), np.array([k[1] for k in knots])) for group, knots in groups.items()}
            for model, groups in maps.items()
        }

    @classmethod
    def load(cls, path: Path = DATA) -> Calibration:
        return cls(json.loads(path.read_text(encoding="utf-8"))["maps"])

    def __call__(self, model: str, group: str, raw: float) -> float:
        """Calibrated confidence (0-100) of a raw score (0-1); a model without a map
        keeps its raw score as a percentage."""
        groups = self._maps.get(model)
        if not groups:
            return float(raw) * 100.0
        xs, ys = groups.get(group) or groups["*"]
        return float(np.interp(raw, xs, ys))


@lru_cache(maxsize=1)
def default() -> Calibration:
    return Calibration.load()


def logistic(raw: np.ndarray, correct: np.ndarray, *, weights: np.ndarray | None = None, prior: float = 1.0) -> list[list[float]]:
    """Knots [[score, confidence 0-100], ...] of a Platt-style fit: P(right) =
    sigmoid(a * logit(score) + b), a >= 0 (so the map never decreases), by Newton's method
    on the weighted log-likelihood with a Gaussian prior of variance ``1/prior`` on a - 1
    and b (with few samples the map stays near the raw score). Knots every 0.05."""
    eps = 1e-4
    x = np.log(np.clip(raw, eps, 1 - eps) / (1 - np.clip(raw, eps, 1 - eps)))
    y = correct.astype(float)
    w = np.ones_like(x) if weights is None else weights.astype(float)
    X = np.stack([x, np.ones_like(x)], axis=1)
    theta = np.array([1.0, 0.0])
    centre = np.array([1.0, 0.0])
    free = [0, 1]  # the slope leaves this list when it is held at 0
    for _ in range(100):
        p = 1 / (1 + np.exp(-(X @ theta)))
        gradient = (X.T @ (w * (p - y)) + prior * (theta - centre))[free]
        hessian = ((X * (w * p * (1 - p))[:, None]).T @ X + prior * np.eye(2))[np.ix_(free, free)]
        step = np.linalg.solve(hessian, gradient)
        theta[free] = theta[free] - step
        if theta[0] < 0.0:  # a decreasing map: hold the slope at 0 and fit the intercept alone
            theta[0], free = 0.0, [1]
            continue
        if np.abs(step).max() < 1e-8:
            break
    grid = np.round(np.linspace(0.0, 1.0, 21), 4)
    logits = np.log(np.clip(grid, eps, 1 - eps) / (1 - np.clip(grid, eps, 1 - eps)))
    values = 100 / (1 + np.exp(-(theta[0] * logits + theta[1])))
    return [[float(g), round(float(v), 2)] for g, v in zip(grid, values)]


def isotonic(raw: np.ndarray, correct: np.ndarray, *, prior: float, strength: float = 2.0) -> list[list[float]]:
    """Knots [[score, confidence 0-100], ...] of a non-decreasing fit of ``correct`` on ``raw``.

    Pool-adjacent-violators over the samples sorted by score; each block's rate is
    (right + strength * prior) / (n + strength), so a block of two right answers says
    about 80-90 %, not 100 %. Knots sit at the blocks' mean scores, with end knots at 0
    and 1 holding the first and last block's values.
    """
    order = np.argsort(raw, kind="stable")
    xs, ys = raw[order].astype(float), correct[order].astype(float)
    blocks: list[list[float]] = []  # [sum of right answers, count, sum of scores]
    for x, y in zip(xs, ys):
        blocks.append([y, 1.0, x])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            right, n, total = blocks.pop()
            blocks[-1][0] += right
            blocks[-1][1] += n
            blocks[-1][2] += total
    knots = []
    for right, n, total in blocks:
        rate = (right + strength * prior) / (n + strength)
        knots.append([round(total / n, 4), round(100.0 * rate, 2)])
    # shrinkage can break monotonicity between blocks of different sizes: restore it
    for i in range(1, len(knots)):
        knots[i][1] = max(knots[i][1], knots[i - 1][1])
    if knots[0][0] > 0.0:
        knots.insert(0, [0.0, knots[0][1]])
    if knots[-1][0] < 1.0:
        knots.append([1.0, knots[-1][1]])
    return knots
