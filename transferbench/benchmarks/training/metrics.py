"""Accuracy and macro-F1 as ``evaluate`` metrics that work offline and online alike.

``evaluate.load("accuracy")`` fetches a script from the hub (it fails offline, and a folder named
``accuracy/`` in the working directory would silently be used instead). So the metrics are
``evaluate.Metric`` subclasses defined here and instantiated directly: the same code path with or
without network. ``evaluate`` is imported lazily because importing it costs seconds.
"""

from __future__ import annotations

from functools import cache

import numpy as np

METRICS = ("accuracy", "macro_f1")


@cache
def _metric_classes() -> dict[str, type]:
    import datasets
    import evaluate
    from sklearn.metrics import accuracy_score, f1_score

    features = datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")})

    def info(description: str, inputs: str) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(description=description, citation="", inputs_description=inputs, features=features)

    class Accuracy(evaluate.Metric):
        def _info(self) -> evaluate.MetricInfo:
            return info("Fraction of predictions equal to the reference label.", "predictions, references: class ids")

        def _compute(self, predictions, references, **_: object) -> dict[str, float]:
            return {"accuracy": float(accuracy_score(references, predictions))}

    class MacroF1(evaluate.Metric):
        def _info(self) -> evaluate.MetricInfo:
            return info(
                "Unweighted mean of per-class F1 over the given label set.",
                "predictions, references: integer class ids; labels: all class ids",
            )

        def _compute(self, predictions, references, labels=None) -> dict[str, float]:
            score = f1_score(references, predictions, labels=labels, average="macro", zero_division=0)
            return {"macro_f1": float(score)}

    return {"accuracy": Accuracy, "macro_f1": MacroF1}


def compute_metrics(predictions: np.ndarray, references: np.ndarray, num_classes: int) -> dict[str, float]:
    """Accuracy and macro-F1 (over all ``num_classes`` classes, so a never-predicted class counts as 0)."""
    import evaluate

    classes = _metric_classes()
    combined = evaluate.combine([classes["accuracy"](), classes["macro_f1"]()])
    return combined.compute(
        predictions=np.asarray(predictions).tolist(),
        references=np.asarray(references).tolist(),
        labels=list(range(num_classes)),
    )


CALIBRATION_BINS = 15


def calibration(probs: np.ndarray, references: np.ndarray, bins: int = CALIBRATION_BINS) -> dict[str, float]:
    """Expected calibration error over ``bins`` equal-width confidence bins (Guo et al. 2017: the
    mean |accuracy - confidence| weighted by each bin's share) and the negative log-likelihood of the
    true classes, per example."""
    probs = np.asarray(probs, dtype=np.float64)
    references = np.asarray(references)
    confidence = probs.max(1)
    correct = probs.argmax(1) == references
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            ece += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    true_prob = probs[np.arange(len(references)), references]
    return {"ece": float(ece), "nll": float(-np.log(np.clip(true_prob, 1e-12, 1.0)).mean())}
