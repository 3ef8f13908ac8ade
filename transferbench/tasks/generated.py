"""Tasks every fresh install can build offline, for the quick suite's text and audio rows.

No labelled text or speech ships inside the installed wheels, so these are generated — and say so
in every record (``data_source``):

* ``docstrings`` (text): real English text — the first paragraph of the docstrings of public functions
  and classes in numpy, torch, scikit-learn and the Python standard library — labelled with the
  library it documents. The texts depend on the installed versions, which every record carries.
* ``synthetic-vowels`` (audio): five vowels synthesised with a source-filter model (glottal pulse
  train through three formant resonators at Peterson & Barney's 1952 averages), with random pitch
  (85-255 Hz), vocal-tract length, duration, loudness and noise. Speech-like, not speech.
"""

from __future__ import annotations

import importlib
import inspect
import re

import numpy as np

from transferbench.tasks.base import BUILTIN_DATA, stratified_split

LIBRARIES = {
    "numpy": ("numpy", "numpy.linalg", "numpy.fft", "numpy.polynomial.polynomial", "numpy.ma"),
    "torch": ("torch", "torch.nn", "torch.nn.functional", "torch.linalg", "torch.fft", "torch.optim"),
    "scikit-learn": (
        "sklearn.linear_model",
        "sklearn.ensemble",
        "sklearn.preprocessing",
        "sklearn.metrics",
        "sklearn.cluster",
        "sklearn.decomposition",
        "sklearn.model_selection",
        "sklearn.svm",
    ),
    "python-stdlib": (
        "os",
        "os.path",
        "re",
        "json",
        "collections",
        "itertools",
        "functools",
        "pathlib",
        "shutil",
        "string",
        "textwrap",
        "datetime",
        "math",
        "statistics",
        "random",
        "subprocess",
        "inspect",
        "typing",
        "email.utils",
        "urllib.parse",
        "zipfile",
        "tarfile",
        "csv",
        "logging",
    ),
}
PER_CLASS = 150


def _first_paragraph(doc: str) -> str | None:
    text = inspect.cleandoc(doc).split("\n\n")[0].replace("\n", " ").strip()
    if re.match(r"^[\w.]+\(", text) or text.startswith((">>>", "..")):  # a signature line, not prose
        return None
    return text if 6 <= len(text.split()) <= 80 else None


@BUILTIN_DATA.register("docstrings")
def docstring_texts() -> tuple[list[str], np.ndarray, list[str], np.ndarray, list[str]]:
    texts, labels, seen = [], [], set()
    names = list(LIBRARIES)
    for label, library in enumerate(names):
        found = []
        for module_name in LIBRARIES[library]:
            module = importlib.import_module(module_name)
            for attr in sorted(dir(module)):
                if attr.startswith("_"):
                    continue
                obj = getattr(module, attr, None)
                if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.isbuiltin(obj)):
                    continue
                doc = getattr(obj, "__doc__", None)
                text = _first_paragraph(doc) if isinstance(doc, str) else None
                if text and text not in seen:
                    seen.add(text)
                    found.append(text)
        rng = np.random.RandomState(label)
        for i in sorted(rng.permutation(len(found))[:PER_CLASS]):
            texts.append(found[i])
            labels.append(label)
    y = np.array(labels, dtype=np.int64)
    train, test = stratified_split(y, 1 / 3, seed=0)
    return [texts[i] for i in train], y[train], [texts[i] for i in test], y[test], names


# Peterson & Barney (1952), adult male averages: F1, F2, F3 in Hz.
VOWELS = {
    "i (heed)": (270, 2290, 3010),
    "e (head)": (530, 1840, 2480),
    "a (hod)": (730, 1090, 2440),
    "o (hawed)": (570, 840, 2410),
    "u (who'd)": (300, 870, 2240),
}
RATE = 16_000


def _vowel(formants: tuple[int, ...], rng: np.random.RandomState) -> np.ndarray:
    from scipy.signal import lfilter

    duration = rng.uniform(0.3, 0.8)
    n = int(duration * RATE)
    f0 = rng.uniform(85, 255) * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(2, 6) * np.arange(n) / RATE))
    phase = np.cumsum(f0 / RATE)
    source = np.diff(np.floor(phase), prepend=0.0)  # one pulse per glottal cycle
    source = lfilter([1.0], [1.0, -0.97], source)  # spectral tilt of the glottal pulse
    tract = rng.uniform(0.85, 1.25)  # vocal-tract length scales every formant
    signal = source
    for formant, bandwidth in zip(formants, (60, 90, 120), strict=True):
        f = formant * tract * rng.uniform(0.95, 1.05)
        r = np.exp(-np.pi * bandwidth / RATE)
        signal = lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * f / RATE), r * r], signal)
    envelope = np.minimum(1, np.minimum(np.arange(n), n - np.arange(n)) / (0.03 * RATE))
    signal = signal * envelope
    signal = signal / (np.abs(signal).max() + 1e-9) * rng.uniform(0.1, 0.9)
    noise = rng.randn(n) * np.sqrt(np.mean(signal**2) / 10 ** (rng.uniform(10, 30) / 10))
    return (signal + noise).astype(np.float32)


@BUILTIN_DATA.register("synthetic-vowels")
def synthetic_vowels(per_class: int = 120) -> tuple[list, np.ndarray, list, np.ndarray, list[str]]:
    rng = np.random.RandomState(0)
    waves, labels = [], []
    for label, formants in enumerate(VOWELS.values()):
        for _ in range(per_class):
            waves.append(_vowel(formants, rng))
            labels.append(label)
    y = np.array(labels, dtype=np.int64)
    train, test = stratified_split(y, 1 / 3, seed=0)
    return [waves[i] for i in train], y[train], [waves[i] for i in test], y[test], list(VOWELS)
