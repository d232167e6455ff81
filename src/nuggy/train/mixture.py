"""Weighted dataset mixture: a reproducible, DDP-sharded stream of (source, sample, seed).

Each epoch is one global stream of ``micro_batches × batch_size × world_size`` items, a pure
function of ``(seed, epoch)``:

* the source of every item is drawn with probability ``weight / Σ weights``, whatever the
  sources' sizes (a 500-image set with weight 1 is drawn as often as a 5 000-image one);
* within a source, samples are taken from fresh random permutations, so a small source is
  cycled through completely before any sample repeats;
* every item carries its own augmentation seed.

Micro-batch ``m`` of the stream is the slice ``[m·B·W, (m+1)·B·W)``; rank ``r`` takes the
``r``-th block of ``B`` items of it. Ranks therefore see disjoint items, and the union over
ranks of micro-batch ``m`` is the same whatever the world size — so a run on 2 processes
with batch ``B`` sees exactly the samples of a run on 1 process with batch ``2B``.
Resuming at step ``s`` continues at micro-batch ``s · grad_accum`` of the epoch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

__all__ = ["MixtureSampler", "mix_report"]


class MixtureSampler:
    """Batch sampler (for ``DataLoader(batch_sampler=…)``) over a weighted mixture.

    Args:
        sizes: number of samples of each source.
        weights: relative sampling weight of each source (>= 0, not all 0).
        batch_size: items per micro-batch and rank.
        micro_batches: micro-batches per epoch.
        seed: base seed; the stream of epoch ``e`` depends only on ``(seed, e)``.
        num_replicas, rank: DDP world size and this process's rank.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        weights: Sequence[float],
        *,
        batch_size: int,
        micro_batches: int,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if len(sizes) != len(weights) or not sizes:
            raise ValueError("need one weight per source and at least one source")
        if any(s <= 0 for s in sizes):
            raise ValueError(f"every source needs samples; sizes: {list(sizes)}")
        w = np.asarray(weights, np.float64)
        if (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"weights must be >= 0 and not all 0; got {list(weights)}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside world of size {num_replicas}")
        self.sizes = [int(s) for s in sizes]
        self.probs = w / w.sum()
        self.batch_size = int(batch_size)
        self.micro_batches = int(micro_batches)
        self.seed = int(seed)
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.epoch = 0
        self.start = 0

    # -- the global stream -------------------------------------------------------------------
    @property
    def global_batch(self) -> int:
        return self.batch_size * self.num_replicas

    def epoch_stream(self, epoch: int) -> np.ndarray:
        """``(N, 3)`` int64 rows ``(source, sample, aug_seed)`` of the whole epoch (all ranks)."""
        n = self.micro_batches * self.global_batch
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, int(epoch), 0x6E75]))
        src = rng.choice(len(self.sizes), size=n, p=self.probs)
        idx = np.empty(n, np.int64)
        for s, size in enumerate(self.sizes):
            where = np.flatnonzero(src == s)
            if where.size == 0:
                continue
            reps = -(-where.size // size)
            perm = np.concatenate([rng.permutation(size) for _ in range(reps)])
            idx[where] = perm[: where.size]
        seeds = rng.integers(0, 2**31 - 1, size=n, dtype=np.int64)
        return np.stack([src.astype(np.int64), idx, seeds], axis=1)

    def rank_batches(self, epoch: int, start: int = 0) -> np.ndarray:
        """``(micro_batches − start, B, 3)``: this rank's micro-batches of ``epoch``."""
        stream = self.epoch_stream(epoch)
        B, W = self.batch_size, self.num_replicas
        blocks = stream.reshape(self.micro_batches, W, B, 3)
        return blocks[start:, self.rank]

    # -- DataLoader protocol ---------------------------------------------------------------
    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch (and the first micro-batch, when resuming mid-epoch)."""
        if not 0 <= start <= self.micro_batches:
            raise ValueError(f"start {start} outside 0..{self.micro_batches}")
        self.epoch, self.start = int(epoch), int(start)

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        for batch in self.rank_batches(self.epoch, self.start):
            yield [tuple(int(v) for v in row) for row in batch]

    def __len__(self) -> int:
        return self.micro_batches - self.start


def mix_report(counts: Sequence[int], names: Sequence[str], weights: Sequence[float]) -> dict:
    """Effective mix: per-source count, fraction drawn and fraction asked for."""
    total = max(int(sum(counts)), 1)
    w = np.asarray(weights, np.float64)
    w = w / w.sum()
    return {
        n: {"count": int(c), "fraction": round(int(c) / total, 4), "target": round(float(t), 4)}
        for n, c, t in zip(names, counts, w)
    }
