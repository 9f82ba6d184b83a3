"""A small ResNet-style image encoder written in plain torch (no torchvision).

Architecture (paper §7): residual backbone of basic blocks → feature vector → linear to ``head_dim``
(the paper's "100-d head") → LeakyReLU → linear to ``code_dim``. Widths, depth per stage, the stem
and the pooling grid are data (:class:`ImageEncoderCfg`); named presets live in
:mod:`misalignlab.models.pair_model`.

The module takes float images (B, 3, H, W), already normalised; it does not know about uint8
pixels or datasets. Everything works in ``torch.channels_last`` memory format (no ``view`` on
feature maps), which is usually faster for convolutions on both CPU and GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn


@dataclass(frozen=True)
class ImageEncoderCfg:
    """Shape of a ResNet-style encoder.

    ``widths[i]`` channels and ``blocks[i]`` basic blocks in stage ``i``; every stage after the first
    halves the spatial size. ``stem_kernel``/``stem_stride`` set the first convolution and
    ``stem_pool`` adds a 3×3 stride-2 max pool after it (ResNet-18's ImageNet stem: 7, 2, True).
    ``pool_grid`` > 1 average-pools the last feature map to a ``pool_grid``² grid and flattens it,
    which keeps coarse position information that global average pooling (``pool_grid`` = 1) discards.
    """

    widths: tuple[int, ...] = (16, 32, 64)
    blocks: tuple[int, ...] = (1, 1, 1)
    stem_kernel: int = 3
    stem_stride: int = 2
    stem_pool: bool = False
    pool_grid: int = 1
    head_dim: int = 100

    def __post_init__(self) -> None:
        if not self.widths or len(self.widths) != len(self.blocks):
            raise ValueError(f"widths {self.widths} and blocks {self.blocks} must be non-empty and of equal length")
        if min(self.widths) < 1 or min(self.blocks) < 1:
            raise ValueError(f"widths and blocks must be positive, got {self.widths}, {self.blocks}")
        if self.pool_grid < 1 or self.head_dim < 1 or self.stem_stride < 1 or self.stem_kernel < 1:
            raise ValueError("pool_grid, head_dim, stem_kernel and stem_stride must be >= 1")


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    """Conv (no bias: batch norm has one) followed by batch norm."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
    )


class BasicBlock(nn.Module):
    """ResNet basic block: two 3×3 convs with a residual connection (1×1 conv when shapes change)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = conv_bn(c_in, c_out, 3, stride)
        self.conv2 = conv_bn(c_out, c_out, 3, 1)
        self.act = nn.ReLU(inplace=True)
        self.shortcut = conv_bn(c_in, c_out, 1, stride) if (stride != 1 or c_in != c_out) else nn.Identity()
        nn.init.zeros_(self.conv2[1].weight)  # each block starts as the identity: stabler from scratch

    def forward(self, x: Tensor) -> Tensor:  # (B, C_in, H, W) → (B, C_out, H/s, W/s)
        return self.act(self.conv2(self.act(self.conv1(x))) + self.shortcut(x))


class ResNetEncoder(nn.Module):
    """Images (B, 3, H, W) → codes (B, code_dim)."""

    def __init__(self, cfg: ImageEncoderCfg, code_dim: int, in_channels: int = 3) -> None:
        super().__init__()
        if code_dim < 1:
            raise ValueError(f"code_dim must be >= 1, got {code_dim}")
        self.cfg = cfg
        stem: list[nn.Module] = [
            *conv_bn(in_channels, cfg.widths[0], cfg.stem_kernel, cfg.stem_stride),
            nn.ReLU(inplace=True),
        ]
        if cfg.stem_pool:
            stem.append(nn.MaxPool2d(3, stride=2, padding=1))
        self.stem = nn.Sequential(*stem)
        stages: list[nn.Module] = []
        c_in = cfg.widths[0]
        for i, (width, n_blocks) in enumerate(zip(cfg.widths, cfg.blocks, strict=True)):
            for j in range(n_blocks):
                stride = 2 if (i > 0 and j == 0) else 1
                stages.append(BasicBlock(c_in, width, stride))
                c_in = width
        self.backbone = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(cfg.pool_grid)
        self.fc = nn.Linear(c_in * cfg.pool_grid**2, cfg.head_dim)  # the paper's backbone output ("100-d head")
        self.act = nn.LeakyReLU()
        self.proj = nn.Linear(cfg.head_dim, code_dim)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @property
    def feature_dim(self) -> int:
        return self.fc.in_features

    def features(self, x: Tensor) -> Tensor:
        """Backbone features (B, C·g²) before the head."""
        return self.pool(self.backbone(self.stem(x))).flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.act(self.fc(self.features(x))))  # (B, code_dim)
