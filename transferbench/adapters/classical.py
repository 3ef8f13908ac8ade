"""Classical reference rows: models fitted in closed form by scikit-learn, reported in the same
tables as the neural adapters so readers see what a pretrained encoder buys over the obvious
baseline. They have no pretrained weights, so they run with strategy ``scratch`` only.

The contract for these is a declared sibling of :class:`Adapter`'s, smaller (there is nothing
to freeze): ``fit(train inputs, labels, val inputs, labels, seed) -> details``,
``predict(inputs)``, ``num_params()`` and ``preprocessing``. Like Adapter's, its abstract members
are enforced: a subclass that misses one fails when instantiated.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from transferbench.adapters.base import register_adapter
from transferbench.inputs import Preprocessing


class ClassicalAdapter(ABC):
    """A model fitted in closed form on raw inputs (texts), reported next to the neural adapters."""

    domain = ""
    num_classes: int

    @property
    @abstractmethod
    def preprocessing(self) -> Preprocessing:
        """What inputs the model takes (``input_key`` "text": raw strings), as for :class:`Adapter`."""

    @abstractmethod
    def fit(self, x_train: Any, y_train: np.ndarray, x_val: Any, y_val: np.ndarray, seed: int) -> dict[str, Any]:
        """Fit on the training split, choosing hyper-parameters on validation; returns details to record."""

    @abstractmethod
    def predict(self, inputs: Any) -> np.ndarray:
        """One class id (int64) per input."""

    def predict_proba(self, inputs: Any) -> np.ndarray | None:
        """Class probabilities [N, num_classes] for calibration, or None where the model has none."""
        return None

    @abstractmethod
    def num_params(self, trainable_only: bool = False) -> int:
        """Fitted parameters (0 before ``fit``), the counterpart of Adapter.num_params."""


class TfidfLogReg(ClassicalAdapter):
    """TF-IDF over word 1-2-grams (sublinear tf) + L2 logistic regression, C chosen on validation."""

    domain = "text"
    C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0)

    def __init__(self, *, num_classes: int, **_: Any) -> None:
        self.num_classes = num_classes
        self.vectorizer: Any = None
        self.model: Any = None

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing("text", "text")

    def fit(self, x_train: Any, y_train: np.ndarray, x_val: Any, y_val: np.ndarray, seed: int) -> dict[str, Any]:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        self.vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
        train_features = self.vectorizer.fit_transform(x_train)
        val_features = self.vectorizer.transform(x_val)
        scores = {}
        for c in self.C_GRID:
            clf = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(train_features, y_train)
            scores[c] = (float(clf.score(val_features, y_val)), clf)
        best = max(scores, key=lambda c: (scores[c][0], -c))
        self.model = scores[best][1]
        return {
            "C": best,
            "val_accuracy_by_C": {str(c): s for c, (s, _) in scores.items()},
            "vocabulary": len(self.vectorizer.vocabulary_),
            "val_accuracy": scores[best][0],
        }

    def predict(self, inputs: Any) -> np.ndarray:
        return self.model.predict(self.vectorizer.transform(inputs)).astype(np.int64)

    def predict_proba(self, inputs: Any) -> np.ndarray:
        """Class probabilities over all ``num_classes`` (a class training never showed gets 0)."""
        found = self.model.predict_proba(self.vectorizer.transform(inputs))
        probs = np.zeros((found.shape[0], self.num_classes), dtype=np.float32)
        probs[:, self.model.classes_] = found
        return probs

    def num_params(self, trainable_only: bool = False) -> int:
        return 0 if self.model is None else int(self.model.coef_.size + self.model.intercept_.size)


@register_adapter(
    "tfidf-logreg",
    domain="text",
    aliases=("tfidf",),
    description="TF-IDF word 1-2-grams + logistic regression "
    "(scikit-learn); the classical reference row, strategy scratch only",
    pretrained_source="none (classical)",
    classical=True,
)
def tfidf_logreg(**kw: Any) -> TfidfLogReg:
    return TfidfLogReg(**kw)
