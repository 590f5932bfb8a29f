"""The terrain embedding network (TEN): a terrain name -> k vectors in a model's token space.

The vectors are prepended to the prompt's token embeddings (``inputs_embeds``), filling the
k terrain slots a stage-2 model reads as end-of-text tokens before its prompt
(``stage2.TERRAIN_SLOTS``): they start as the end-of-text embedding, and the RL stage learns
what they should say for each terrain. Two kinds:

* ``"table"``: one learned ``(k, d)`` block per terrain, the paper's discrete variant.
* ``"profile"``: a small MLP over a fixed description of the terrain's geometry (ground
  heights around the start, walls, ceiling; ``terrain_features``), added to a shared learned
  block. It sees terrains as shapes rather than names, the spirit of the paper's image encoder.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from evolution.sodarace import get_terrain

KINDS = ("table", "profile")
PROFILE_POINTS = 32  # ground heights sampled across PROFILE_SPAN
PROFILE_SPAN = 40.0  # world units, centred on the start (a walker is ~10 wide)


def terrain_features(name: str) -> torch.Tensor:
    """A terrain's geometry as numbers: ``(PROFILE_POINTS + 3,)``.

    Ground heights at evenly spaced x across ``PROFILE_SPAN`` around the start, then: a wall
    on the left (0/1), a wall on the right (0/1), and the ceiling height scaled by 0.1 (0: none).

    Raises:
        ValueError: For an unknown terrain name.
    """
    terrain = get_terrain(name)
    xs = torch.linspace(-PROFILE_SPAN / 2, PROFILE_SPAN / 2, PROFILE_POINTS)
    heights = [terrain.ground_height(float(x)) for x in xs]
    wall_x = [min(s.a[0], s.b[0]) for s in terrain.features]
    left = float(any(x < 0 for x in wall_x))
    right = float(any(x > 0 for x in wall_x))
    ceiling = 0.1 * (terrain.tunnel_height or 0.0)
    return torch.tensor([*heights, left, right, ceiling], dtype=torch.float32)


class TerrainEmbedding(nn.Module):
    """Terrain ids -> prefix vectors in the language model's token-embedding space.

    Args:
        terrains: The terrain names it knows; ``terrains[i]`` has id ``i``.
        prefix_tokens: k, the number of prefix vectors per terrain.
        init: ``(d,)`` or ``(k, d)`` starting point of every terrain's prefix (e.g. the
            end-of-text token's embedding: a stage-2 model reads k end-of-text tokens before
            its prompt, so that prefix leaves it exactly as trained).
        kind: ``"table"`` or ``"profile"`` (see the module docstring).
        noise: Standard deviation, relative to ``init``'s root mean square (or absolute when
            ``init`` is zero), of noise added to the starting prefix (table) or of the profile
            MLP's output weights. Default 0: every terrain starts exactly at ``init``, and the
            untrained inventor writes what the stage-2 model writes. Terrains need no noise to
            learn apart: each terrain's vectors get gradients only from its own episodes (and
            a profile MLP whose output layer starts at zero, like LoRA's B, trains its first
            layer from the second step on).
        hidden: Width of the profile MLP.

    Raises:
        ValueError: For an unknown kind or terrain, no terrains, repeated terrains or ``k < 1``.
    """

    def __init__(
        self,
        terrains: Sequence[str],
        *,
        prefix_tokens: int,
        init: torch.Tensor,
        kind: str = "table",
        noise: float = 0.0,
        hidden: int = 64,
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if not terrains or len(set(terrains)) != len(terrains):
            raise ValueError(f"give one or more distinct terrain names, got {list(terrains)}")
        if prefix_tokens < 1:
            raise ValueError(f"prefix_tokens must be >= 1, got {prefix_tokens}")
        features = torch.stack([terrain_features(t) for t in terrains])  # (T, F); raises on a bad name
        self.terrains = tuple(terrains)
        self.kind = kind
        self.prefix_tokens = prefix_tokens
        init = init.detach().float().reshape(-1, init.shape[-1]).expand(prefix_tokens, -1)  # (k, d)
        self.width = init.shape[-1]
        scale = noise * (float(init.pow(2).mean().sqrt()) or 1.0)  # relative to init's RMS
        if kind == "table":
            table = init.expand(len(terrains), -1, -1).clone()  # (T, k, d)
            self.table = nn.Parameter(table + scale * torch.randn_like(table))
        else:
            self.register_buffer("features", features)
            self.base = nn.Parameter(init.clone())  # (k, d)
            self.encoder = nn.Sequential(
                nn.Linear(features.shape[1], hidden), nn.Tanh(), nn.Linear(hidden, prefix_tokens * self.width)
            )
            nn.init.normal_(self.encoder[2].weight, std=scale / hidden**0.5)
            nn.init.zeros_(self.encoder[2].bias)

    def ids(self, names: Sequence[str]) -> torch.Tensor:
        """``(B,)`` ids of terrain names.

        Raises:
            ValueError: For a terrain this network was not trained on.
        """
        unknown = sorted(set(names) - set(self.terrains))
        if unknown:
            raise ValueError(f"terrain(s) {', '.join(unknown)} unknown to this model; it knows {', '.join(self.terrains)}")
        return torch.tensor([self.terrains.index(n) for n in names], dtype=torch.long)

    def forward(self, terrain_ids: torch.Tensor) -> torch.Tensor:
        """``(B,)`` terrain ids -> ``(B, k, d)`` prefix vectors."""
        if self.kind == "table":
            return self.table[terrain_ids]  # (B, k, d)
        encoded = self.encoder(self.features[terrain_ids])  # (B, k * d)
        return self.base + encoded.view(-1, self.prefix_tokens, self.width)  # (B, k, d)


__all__ = ["KINDS", "TerrainEmbedding", "terrain_features"]
