"""The data set and the model, shared by the ClientApp, the ServerApp and the data preparer.

Data: scikit-learn's bundled 8x8 digits (1797 images, in the wheel: nothing is downloaded). A fixed 30 % is held
out as the ServerApp's test set; the rest is the training part, shuffled with a fixed seed and cut into
`num-partitions` disjoint partitions, partition i for client i+1.

Model: a linear classifier (one-vs-rest logistic regression) trained by SGD; its arrays are the coefficients
(10 x 64) and the intercepts (10), which FedAvg averages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split

CLASSES = np.arange(10)
FEATURES = 64
SEED = 0
TRAIN_FILE = "train.npz"  # in a client's data-path: arrays X (n x 64, pixels scaled to 0..1) and y (0..9)


def _split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    x = x / 16.0  # pixel intensities are 0..16
    return train_test_split(x, y, test_size=0.3, random_state=SEED, stratify=y)


def test_set() -> tuple[np.ndarray, np.ndarray]:
    _, x_test, _, y_test = _split()
    return x_test, y_test


def partition(partition_id: int, num_partitions: int) -> tuple[np.ndarray, np.ndarray]:
    """One of `num_partitions` disjoint, shuffled slices of the training part."""
    if not 0 <= partition_id < num_partitions:
        raise ValueError(f"partition-id {partition_id} is outside 0..{num_partitions - 1}")
    x_train, _, y_train, _ = _split()
    order = np.random.default_rng(SEED).permutation(len(y_train))
    mine = np.array_split(order, num_partitions)[partition_id]
    return x_train[mine], y_train[mine]


def load_dir(directory: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """A client's own data: DIR/train.npz with X and y, checked against what the model expects."""
    path = Path(directory) / TRAIN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"data-path {directory}: no {TRAIN_FILE} there (expected arrays X and y)")
    with np.load(path) as data:
        x, y = np.asarray(data["X"], dtype=float), np.asarray(data["y"]).astype(int)
    if x.ndim != 2 or x.shape[1] != FEATURES or len(x) != len(y) or len(y) == 0:
        raise ValueError(f"{path}: X must be n x {FEATURES} and y n labels (got X {x.shape}, y {y.shape})")
    if not np.isin(y, CLASSES).all():
        raise ValueError(f"{path}: labels must be digits 0..9")
    return x, y


def model(arrays: list[np.ndarray], learning_rate: float, seed: int) -> SGDClassifier:
    """A classifier that starts from the global arrays (coefficients, intercepts)."""
    clf = SGDClassifier(loss="log_loss", learning_rate="constant", eta0=learning_rate, alpha=1e-4,
                        random_state=seed)
    clf.classes_ = CLASSES
    clf.coef_ = np.array(arrays[0], dtype=float)
    clf.intercept_ = np.array(arrays[1], dtype=float)
    return clf


def initial_arrays() -> list[np.ndarray]:
    return [np.zeros((len(CLASSES), FEATURES)), np.zeros(len(CLASSES))]


def train(clf: SGDClassifier, x: np.ndarray, y: np.ndarray, epochs: int) -> list[np.ndarray]:
    for _ in range(epochs):  # one pass over the local data each (classes given: a partition may lack a digit)
        clf.partial_fit(x, y, classes=CLASSES)
    return [clf.coef_, clf.intercept_]


def accuracy(arrays: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    return float(model(arrays, 0.01, 0).score(x, y))  # no training: the rate is unused
