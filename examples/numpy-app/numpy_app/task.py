"""Synthetic data: y = X @ w_true + noise, a different slice of the input space per partition id."""

import numpy as np

FEATURES = 4
W_TRUE = np.array([1.5, -2.0, 0.5, 3.0])


def load_partition(partition_id: int, num_partitions: int, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1000 + partition_id)
    shift = (partition_id - (num_partitions - 1) / 2) / max(num_partitions, 1)
    x = rng.normal(loc=shift, size=(n, FEATURES))
    y = x @ W_TRUE + rng.normal(scale=0.1, size=n)
    return x, y


def loss(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((x @ w - y) ** 2))


def gradient_steps(w: np.ndarray, x: np.ndarray, y: np.ndarray, steps: int, lr: float) -> np.ndarray:
    for _ in range(steps):
        w = w - lr * (2 / len(y)) * x.T @ (x @ w - y)
    return w
