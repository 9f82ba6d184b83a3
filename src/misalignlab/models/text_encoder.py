"""A 1-D convolutional text encoder on token ids, with padding masked out.

Token ids (B, L) → embedding (B, L, E) → ``len(widths)`` blocks of [conv1d (kernel k) → LayerNorm
over channels → ReLU → zero the padded positions] → mean over real tokens → linear to ``code_dim``.

Why this shape: the paper's text encoder is a word embedding (128) followed by a small conv stack;
a 1-D conv is cheap on CPU. Padding must not change a caption's code, so padded positions are
zeroed after every block (they then look exactly like the convolution's own zero padding) and the
pooling averages real tokens only. LayerNorm normalises each position on its own, so unlike batch
norm it never mixes padded positions into statistics, in training or evaluation mode alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn


@dataclass(frozen=True)
class TextEncoderCfg:
    """Shape of a conv text encoder: embedding size, channels per conv block, kernel, dilations."""

    embed_dim: int = 128
    widths: tuple[int, ...] = (128, 128)
    kernel: int = 3
    dilations: tuple[int, ...] | None = None  # one per block; None = all 1

    def __post_init__(self) -> None:
        if self.embed_dim < 1 or not self.widths or min(self.widths) < 1:
            raise ValueError(f"embed_dim and widths must be positive, got {self.embed_dim}, {self.widths}")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"kernel must be a positive odd number (keeps lengths), got {self.kernel}")
        if self.dilations is not None and len(self.dilations) != len(self.widths):
            raise ValueError(f"need one dilation per block: {self.dilations} vs widths {self.widths}")


class ConvBlock(nn.Module):
    """conv1d → LayerNorm over channels → ReLU, on (B, C, L) with a (B, 1, L) mask."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel, padding=dilation * (kernel // 2), dilation=dilation)
        self.norm = nn.LayerNorm(c_out)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        h = self.conv(x)  # (B, C, L)
        h = self.norm(h.transpose(1, 2)).transpose(1, 2)  # normalise each position over C
        return self.act(h) * mask  # padded positions back to exactly zero


class ConvTextEncoder(nn.Module):
    """Token ids (B, L) → codes (B, code_dim); ``pad_id`` tokens are ignored."""

    def __init__(self, cfg: TextEncoderCfg, vocab_size: int, code_dim: int, pad_id: int = 0) -> None:
        super().__init__()
        if vocab_size < 2 or code_dim < 1:
            raise ValueError(f"need vocab_size >= 2 and code_dim >= 1, got {vocab_size}, {code_dim}")
        self.cfg = cfg
        self.pad_id = pad_id
        self.embed = nn.Embedding(vocab_size, cfg.embed_dim, padding_idx=pad_id)
        dilations = cfg.dilations or (1,) * len(cfg.widths)
        c_in = cfg.embed_dim
        blocks = []
        for width, dilation in zip(cfg.widths, dilations, strict=True):
            blocks.append(ConvBlock(c_in, width, cfg.kernel, dilation))
            c_in = width
        self.blocks = nn.ModuleList(blocks)
        self.proj = nn.Linear(c_in, code_dim)

    def forward(self, tokens: Tensor) -> Tensor:
        mask = (tokens != self.pad_id).unsqueeze(1).to(self.embed.weight.dtype)  # (B, 1, L)
        x = self.embed(tokens).transpose(1, 2) * mask  # (B, E, L)
        for block in self.blocks:
            x = block(x, mask)
        n_real = mask.sum(dim=-1).clamp_min(1.0)  # (B, 1); an empty caption pools to zeros
        pooled = x.sum(dim=-1) / n_real  # (B, C)
        return self.proj(pooled)  # (B, code_dim)
