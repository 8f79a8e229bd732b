"""Tolerances of the parity tests against the reference goldens (one place, so every test reads
them the same way).

- embeddings: per row, cosine >= 0.99999 and max abs difference <= 1e-4;
- logits, probabilities, scores: |ours - golden| <= 1e-3 * max(1, |golden|) (absolute 1e-3,
  relative 1e-3 where the values are larger than 1);
- token ids, shapes: identical;
- top-k indices: identical, except that where golden values are tied within 1e-5 any of the tied
  indices is accepted.
"""

import numpy as np

COSINE_MIN = 0.99999
EMBED_MAX_ABS = 1e-4
LOGIT_TOL = 1e-3
TIE = 1e-5


def as_numpy(x):
    """A torch tensor, numpy array or nested list as a numpy array (no torch import)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def embedding_diffs(ours, golden):
    """(worst cosine, max abs difference) over the rows of two ``[n, d]`` arrays."""
    a = as_numpy(ours).astype(np.float64).reshape(-1, np.shape(golden)[-1])
    b = np.asarray(golden, dtype=np.float32).astype(np.float64).reshape(a.shape)
    cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return float(cos.min()), float(np.abs(a - b).max())


def assert_embeddings_close(ours, golden, what="embeddings"):
    cos, diff = embedding_diffs(ours, golden)
    assert cos >= COSINE_MIN and diff <= EMBED_MAX_ABS, (
        f"{what}: worst cosine {cos:.9f} (need >= {COSINE_MIN}), max abs {diff:.3g} "
        f"(need <= {EMBED_MAX_ABS})"
    )
    return cos, diff


def logit_diff(ours, golden):
    """Max of |ours - golden| / max(1, |golden|)."""
    a = as_numpy(ours).astype(np.float64)
    b = np.asarray(golden, dtype=np.float32).astype(np.float64)
    assert a.shape == b.shape, f"shape {a.shape} != golden {b.shape}"
    if a.size == 0:
        return 0.0
    return float((np.abs(a - b) / np.maximum(1.0, np.abs(b))).max())


def assert_logits_close(ours, golden, what="logits"):
    diff = logit_diff(ours, golden)
    assert diff <= LOGIT_TOL, f"{what}: max difference {diff:.3g} (need <= {LOGIT_TOL})"
    return diff


def assert_topk_indices(ours, golden_indices, golden_all, what="indices"):
    """``ours`` equals ``golden_indices`` position by position, where a position whose golden
    value ties (within 1e-5) with other entries of ``golden_all`` (the full vector topk ran
    over) accepts any of the tied indices."""
    ours = as_numpy(ours).astype(np.int64).tolist()
    golden_indices = [int(i) for i in golden_indices]
    golden_all = np.asarray(golden_all, dtype=np.float64)
    assert len(ours) == len(golden_indices), f"{what}: {ours} vs golden {golden_indices}"
    for pos, (i, g) in enumerate(zip(ours, golden_indices)):
        tied = set(np.flatnonzero(np.abs(golden_all - golden_all[g]) <= TIE).tolist())
        assert i == g or i in tied, (
            f"{what}[{pos}]: {i}, golden {g} (values {golden_all[i]:.7g} vs {golden_all[g]:.7g}); "
            f"ours {ours}, golden {golden_indices}"
        )
