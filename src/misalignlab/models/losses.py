"""Contrastive losses, each named for the variant it is (the paper's text and code use three different "InfoNCE" forms).

Three different objectives are all called "InfoNCE" in the literature; misalignlab names the
variant in every config and result:

- ``clip_cross_modal``: CLIP's symmetric cross-entropy over image–text logits (paper Eq. 1),
  cosine similarity divided by a temperature by default, or negative squared distance.
- ``ntxent_intra_modal``: NT-Xent over all 2B codes, intra-modal negatives included (the paper's
  image–text code).
- ``sqeuclid_independent``: squared-Euclidean InfoNCE whose negatives come from a second,
  independent batch of the *same* modality (the paper's numeric-simulation code), τ = 1.

Every loss accepts optional per-pair weights (B,), returns a scalar, and exposes ``per_pair``.
All functions work on stacked models too: inputs of shape (M, B, D) give (M, B) per-pair losses.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from misalignlab.registry import Registry

LOSSES: Registry[type[ContrastiveLoss]] = Registry("loss")


def weighted_mean(per_pair: Tensor, weight: Tensor | None) -> Tensor:
    """Mean over the last axis, weighted by ``weight`` (same shape or broadcastable) when given."""
    if weight is None:
        return per_pair.mean(dim=-1)
    weight = weight.to(per_pair.dtype)
    return (per_pair * weight).sum(dim=-1) / weight.sum(dim=-1).clamp_min(1e-12)


def neg_sq_dist(a: Tensor, b: Tensor) -> Tensor:
    """−‖a_i − b_j‖² for all pairs: (..., B, D) × (..., C, D) → (..., B, C)."""
    a2 = (a * a).sum(-1, keepdim=True)  # (..., B, 1)
    b2 = (b * b).sum(-1).unsqueeze(-2)  # (..., 1, C)
    return 2.0 * (a @ b.transpose(-1, -2)) - a2 - b2


def cosine_sim(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity for all pairs: (..., B, D) × (..., C, D) → (..., B, C)."""
    return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).transpose(-1, -2)


def row_ce(logits: Tensor, targets: Tensor | None = None, offset: int = 0) -> Tensor:
    """Cross entropy of each row of (..., B, C) logits; soft targets (..., B, C), or hard ones: row i's
    positive is column ``offset + i`` (the diagonal; ``offset`` > 0 for a rank's rows of a gathered batch)."""
    logp = logits.log_softmax(dim=-1)
    if targets is None:
        return -logp.diagonal(offset=offset, dim1=-2, dim2=-1)
    return -(targets * logp).sum(dim=-1)


class ContrastiveLoss(nn.Module):
    """Base class: ``forward`` returns the (weighted) mean of ``per_pair``."""

    variant: ClassVar[str]

    def per_pair(self, img: Tensor, txt: Tensor, **kw: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, img: Tensor, txt: Tensor, weight: Tensor | None = None, **kw: Tensor) -> Tensor:
        return weighted_mean(self.per_pair(img, txt, **kw), weight)

    def per_pair_rows(self, img: Tensor, txt: Tensor, rows: slice, **kw: Tensor) -> Tensor:
        """Per-pair losses (..., len(rows)) of the pairs at ``rows`` of a batch of codes (..., B, D).

        Distributed training calls it with the gathered global batch and a rank's own rows. This
        default computes every pair and keeps ``rows``; a loss that can compute only those rows
        (against all B columns, as open_clip's ``local_loss``) overrides it.
        """
        return self.per_pair(img, txt, **kw)[..., rows]


@LOSSES.register("clip_cross_modal")
class ClipInfoNCE(ContrastiveLoss):
    """Paper Eq. 1 / CLIP: symmetric cross entropy, negatives from the other modality only.

    ``similarity`` is ``"cosine"`` (CLIP, divided by ``tau``) or ``"neg_sq_euclid"`` (the paper's
    theory, τ = 1). ``targets`` (B, B) may replace the diagonal with soft correspondence targets.
    """

    variant = "clip_cross_modal"

    def __init__(
        self, tau: float = 0.07, similarity: str = "cosine", learn_tau: bool = False, align_weight: float = 0.0
    ) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f"loss.tau must be > 0, got {tau}")
        if similarity not in ("cosine", "neg_sq_euclid"):
            raise ValueError(f"loss.similarity must be 'cosine' or 'neg_sq_euclid', got {similarity!r}")
        if align_weight < 0:
            raise ValueError(f"loss.align_weight must be >= 0, got {align_weight}")
        self.similarity = similarity
        # α·(1 − cos(a_i, b_i))/τ (or α·‖a_i − b_i‖²/τ) per pair: an explicit alignment term. Once the
        # softmax is confident (captions repeat, so the loss sits at its floor) cross entropy no
        # longer pulls an image code to its caption's, and spare dimensions keep nuisances; this
        # term keeps pulling (Wang & Isola's alignment; the paper's loss has it with weight 1).
        self.align_weight = align_weight
        log_tau = torch.tensor(float(tau)).log()
        self.log_tau = nn.Parameter(log_tau) if learn_tau else None
        self.register_buffer("_log_tau_fixed", log_tau, persistent=False)

    @property
    def tau(self) -> Tensor:
        return (self.log_tau if self.log_tau is not None else self._log_tau_fixed).exp()

    def logits(self, img: Tensor, txt: Tensor) -> Tensor:
        sim = cosine_sim(img, txt) if self.similarity == "cosine" else neg_sq_dist(img, txt)
        return sim / self.tau  # (..., B, B)

    def _misalignment(self, img: Tensor, txt: Tensor) -> Tensor:
        """α × the pair's distance in logit units: (1 − cos)/τ or ‖a − b‖²/τ, shape (..., B)."""
        if self.similarity == "cosine":
            dist = 1.0 - F.cosine_similarity(img, txt, dim=-1)
        else:
            dist = ((img - txt) ** 2).sum(-1)
        return self.align_weight * dist / self.tau

    def per_pair(self, img: Tensor, txt: Tensor, targets: Tensor | None = None) -> Tensor:
        logits = self.logits(img, txt)
        t_rows = targets
        t_cols = targets.transpose(-1, -2) if targets is not None else None
        out = 0.5 * (row_ce(logits, t_rows) + row_ce(logits.transpose(-1, -2), t_cols))
        return out + self._misalignment(img, txt) if self.align_weight else out

    def per_pair_rows(self, img: Tensor, txt: Tensor, rows: slice, targets: Tensor | None = None) -> Tensor:
        # Both similarities are symmetric, so column j of the (B, B) logits is logits(txt_j, img):
        # rows (b, B) per direction suffice, b·B work instead of B·B.
        i2t = self.logits(img[..., rows, :], txt)  # (..., b, B): own images against every caption
        t2i = self.logits(txt[..., rows, :], img)  # (..., b, B): own captions against every image
        t_i2t = targets[..., rows, :] if targets is not None else None
        t_t2i = targets.transpose(-1, -2)[..., rows, :] if targets is not None else None
        start = rows.start or 0
        out = 0.5 * (row_ce(i2t, t_i2t, start) + row_ce(t2i, t_t2i, start))
        return out + self._misalignment(img[..., rows, :], txt[..., rows, :]) if self.align_weight else out


@LOSSES.register("ntxent_intra_modal")
class NTXentIntraModal(ContrastiveLoss):
    """NT-Xent over [img; txt]: for img_i the positive is txt_i, negatives all other 2B − 2 codes."""

    variant = "ntxent_intra_modal"

    def __init__(self, tau: float = 1.0) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f"loss.tau must be > 0, got {tau}")
        self.tau = tau

    def per_pair(self, img: Tensor, txt: Tensor) -> Tensor:
        b = img.shape[-2]
        codes = torch.cat([img, txt], dim=-2)  # (..., 2B, D)
        sim = cosine_sim(codes, codes) / self.tau  # (..., 2B, 2B)
        eye = torch.eye(2 * b, dtype=torch.bool, device=img.device)
        sim = sim.masked_fill(eye, float("-inf"))  # a code is never its own negative
        pos = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(img.device)
        logp = sim.log_softmax(dim=-1)
        per_code = -logp.gather(-1, pos.expand(*sim.shape[:-1]).unsqueeze(-1)).squeeze(-1)  # (..., 2B)
        return 0.5 * (per_code[..., :b] + per_code[..., b:])


@LOSSES.register("sqeuclid_independent")
class SqEuclidIndependentNegatives(ContrastiveLoss):
    """Paper §11 (c), the numeric simulation's loss (τ = 1).

    x→t term for pair i: d⁺ + log[(1/(B+1)) (Σ_j exp(−‖a_i − a'_j‖²) + exp(−d⁺))], d⁺ = ‖a_i − b_i‖²,
    where a' is the image code of a second, independent batch; the t→x term uses b'. If no
    independent batch is given, the other in-batch items of the same modality serve (j ≠ i).
    """

    variant = "sqeuclid_independent"

    def __init__(self, align_weight: float = 1.0) -> None:
        super().__init__()
        if align_weight <= 0:
            raise ValueError(f"loss.align_weight must be > 0, got {align_weight}")
        # λ·d⁺ outside the log-sum-exp. λ = 1 is the paper's loss; any λ > 0 has the same global
        # minimisers whenever perfect alignment is attainable (d⁺ = 0 there), but a larger λ
        # penalises codes that keep misaligned (perturbed) information sooner.
        self.align_weight = align_weight

    def per_pair(
        self, img: Tensor, txt: Tensor, img_neg: Tensor | None = None, txt_neg: Tensor | None = None
    ) -> Tensor:
        d_pos = ((img - txt) ** 2).sum(-1)  # (..., B)
        return 0.5 * (self._direction(img, d_pos, img_neg) + self._direction(txt, d_pos, txt_neg))

    def _direction(self, anchor: Tensor, d_pos: Tensor, negatives: Tensor | None) -> Tensor:
        b = anchor.shape[-2]
        if negatives is None:
            neg = neg_sq_dist(anchor, anchor)
            eye = torch.eye(b, dtype=torch.bool, device=anchor.device)
            neg = neg.masked_fill(eye, float("-inf"))
            count = b  # B − 1 negatives plus the positive
        else:
            neg = neg_sq_dist(anchor, negatives)  # (..., B, B')
            count = negatives.shape[-2] + 1
        all_terms = torch.cat([neg, -d_pos.unsqueeze(-1)], dim=-1)
        return self.align_weight * d_pos + torch.logsumexp(all_terms, dim=-1) - torch.log(torch.tensor(float(count)))


@LOSSES.register("siglip")
class SigLIPLoss(ContrastiveLoss):
    """SigLIP's pairwise sigmoid loss: each (i, j) is a binary match / no-match decision."""

    variant = "siglip"

    def __init__(self, tau: float = 0.1, bias: float = -10.0) -> None:
        super().__init__()
        self.log_inv_tau = nn.Parameter(torch.tensor(1.0 / tau).log())
        self.bias = nn.Parameter(torch.tensor(float(bias)))

    def per_pair(self, img: Tensor, txt: Tensor) -> Tensor:
        logits = cosine_sim(img, txt) * self.log_inv_tau.exp() + self.bias  # (..., B, B)
        b = img.shape[-2]
        labels = 2 * torch.eye(b, device=img.device) - 1  # +1 on the diagonal, −1 elsewhere
        return -F.logsigmoid(labels * logits).sum(dim=-1)


def build_loss(name: str, **kwargs: float | str | bool) -> ContrastiveLoss:
    """Instantiate a registered loss by name with its keyword arguments."""
    return LOSSES.get(name)(**kwargs)
