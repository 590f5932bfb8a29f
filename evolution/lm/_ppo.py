"""PPO for language models, the pieces: KL-penalised token rewards, GAE, clipped losses.

Plain torch functions over right-padded ``(B, T)`` tensors of response tokens with a ``mask``
(1.0 for a token the policy wrote, 0.0 for padding after it). The recipe is Ziegler et al.
(2019), as TRL's PPO trainer also implements it: every token pays ``kl_coef`` times the
log-ratio of the policy to the frozen reference model, the last token also receives the
episode's score, and generalised advantage estimation (Schulman et al., 2016) turns those
rewards and a value head's estimates into advantages.

Why not TRL's trainer: its PPO trainer (``trl.experimental.ppo`` in TRL 1.x) samples from
``input_ids`` queries of a dataset and scores them with a reward *model* (an ``nn.Module``),
so it has no place for a learned prefix given as ``inputs_embeds`` nor for a reward that runs
a sandbox and a simulator; and it would add TRL, ``datasets`` and pandas as dependencies. The
loop in ``stage3`` is short, and these functions are the parts worth testing on their own.
"""

from __future__ import annotations

import torch


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask`` is 1 (0 when the mask is empty)."""
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def whiten(values: torch.Tensor, mask: torch.Tensor, *, eps: float = 1e-8) -> torch.Tensor:
    """``values`` shifted and scaled to mean 0, variance 1 over the masked entries (padding: 0)."""
    mean = masked_mean(values, mask)
    var = masked_mean((values - mean) ** 2, mask)
    return (values - mean) * torch.rsqrt(var + eps) * mask


def token_rewards(
    scores: torch.Tensor, logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor, *, kl_coef: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token rewards: a KL penalty on every token, the episode's score on its last one.

    The KL term is the sampled estimate ``log pi(a|s) - log pi_ref(a|s)`` of each written token
    (its mean over an episode estimates KL(pi || pi_ref) of the whole text).

    Args:
        scores: ``(B,)`` episode rewards (e.g. distance travelled, or the failure penalty).
        logprobs: ``(B, T)`` log-probabilities of the written tokens under the policy.
        ref_logprobs: ``(B, T)`` the same under the frozen reference model.
        mask: ``(B, T)`` 1.0 for written tokens; each row has at least one.
        kl_coef: Weight of the KL penalty (beta).

    Returns:
        ``(rewards, kl)``, both ``(B, T)`` and zero on padding.

    Raises:
        ValueError: If a row of ``mask`` is empty (an episode without tokens has no last token).
    """
    lengths = mask.sum(dim=1).long()  # (B,)
    if (lengths == 0).any():
        raise ValueError("every episode needs at least one written token; drop empty rows before scoring")
    kl = (logprobs - ref_logprobs) * mask  # (B, T)
    rewards = -kl_coef * kl
    rows = torch.arange(len(scores), device=scores.device)
    rewards[rows, lengths - 1] += scores.to(rewards.dtype)
    return rewards, kl


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, *, gamma: float = 1.0, lam: float = 0.95
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over right-padded episodes.

    ``delta_t = r_t + gamma * V_{t+1} - V_t`` (``V`` is 0 after an episode's last token) and
    ``A_t = delta_t + gamma * lam * A_{t+1}``; returns ``A_t + V_t`` are the value head's targets.

    Args:
        rewards: ``(B, T)`` per-token rewards (``token_rewards``).
        values: ``(B, T)`` value estimates of the state before each token.
        mask: ``(B, T)`` 1.0 for written tokens, contiguous from the start of each row.
        gamma: Discount.
        lam: GAE's lambda (0: one-step TD, 1: Monte Carlo).

    Returns:
        ``(advantages, returns)``, both ``(B, T)`` and zero on padding.
    """
    advantages = torch.zeros_like(rewards)
    next_advantage = torch.zeros_like(rewards[:, 0])  # (B,)
    next_value = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        m = mask[:, t]
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantage = delta + gamma * lam * next_advantage
        advantages[:, t] = advantage * m
        # padding carries nothing back into the episode before it
        next_advantage = advantage * m
        next_value = values[:, t] * m
    returns = (advantages + values) * mask
    return advantages, returns


def policy_loss(
    logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, *, clip: float = 0.2
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate loss (to minimise) and the fraction of tokens where the clip bit.

    ``max(-A * r, -A * clip(r, 1 - clip, 1 + clip))`` with ``r = exp(logprobs - old_logprobs)``,
    averaged over written tokens. All tensors are ``(B, T)``.
    """
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    clipfrac = masked_mean((clipped > unclipped).float(), mask)
    return loss, clipfrac


def value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, *, clip: float = 0.2
) -> torch.Tensor:
    """Clipped value loss: ``0.5 * max((V - R)^2, (V_old + clip(V - V_old) - R)^2)``, averaged.

    All tensors are ``(B, T)``; ``clip`` bounds how far a value may move from the one it had
    when the episodes were collected.
    """
    clipped = old_values + torch.clamp(values - old_values, -clip, clip)
    return 0.5 * masked_mean(torch.maximum((values - returns) ** 2, (clipped - returns) ** 2), mask)


__all__ = ["gae", "masked_mean", "policy_loss", "token_rewards", "value_loss", "whiten"]
