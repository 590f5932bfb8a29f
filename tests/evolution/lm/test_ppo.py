"""PPO pieces against hand-computed numbers: KL-penalised rewards, GAE, clipped losses."""

from __future__ import annotations

import pytest
import torch

from evolution.lm._ppo import gae, masked_mean, policy_loss, token_rewards, value_loss, whiten


def t(rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_gae_matches_a_hand_computed_example_and_ignores_padding():
    rewards = t([[0.0, 0.0, 1.0], [2.0, 5.0, 5.0]])
    values = t([[0.5, 0.2, 0.1], [1.0, 9.0, 9.0]])  # the padding's values and rewards must not leak in
    mask = t([[1, 1, 1], [1, 0, 0]])
    advantages, returns = gae(rewards, values, mask, gamma=0.9, lam=0.8)
    # row 0, backwards: delta_2 = 1 - 0.1 = 0.9;  A_2 = 0.9
    #   delta_1 = 0.9 * 0.1 - 0.2 = -0.11;        A_1 = -0.11 + 0.72 * 0.9 = 0.538
    #   delta_0 = 0.9 * 0.2 - 0.5 = -0.32;        A_0 = -0.32 + 0.72 * 0.538 = 0.06736
    # row 1: a one-token episode: A_0 = 2 - 1 = 1
    assert advantages == pytest.approx(t([[0.06736, 0.538, 0.9], [1.0, 0.0, 0.0]]), abs=1e-6)
    assert returns == pytest.approx(t([[0.56736, 0.738, 1.0], [2.0, 0.0, 0.0]]), abs=1e-6)


def test_gae_with_lambda_and_gamma_one_is_reward_to_go_minus_value():
    rewards = t([[0.5, -1.0, 3.0, 2.0]])
    values = t([[1.0, 2.0, 0.5, 0.0]])
    advantages, returns = gae(rewards, values, torch.ones(1, 4), gamma=1.0, lam=1.0)
    to_go = t([[4.5, 4.0, 5.0, 2.0]])
    assert advantages == pytest.approx(to_go - values)
    assert returns == pytest.approx(to_go)


def test_token_rewards_charge_kl_on_every_token_and_pay_the_score_on_the_last():
    logprobs = t([[-1.0, -2.0, -0.5], [-0.1, 0.0, 0.0]])
    ref = t([[-1.5, -1.0, -0.5], [-0.3, -7.0, -7.0]])
    mask = t([[1, 1, 1], [1, 0, 0]])
    rewards, kl = token_rewards(t([3.0, -1.0]), logprobs, ref, mask, kl_coef=0.5)
    assert kl == pytest.approx(t([[0.5, -1.0, 0.0], [0.2, 0.0, 0.0]]))
    assert rewards == pytest.approx(t([[-0.25, 0.5, 3.0], [-0.1 - 1.0, 0.0, 0.0]]))


def test_token_rewards_refuse_an_episode_without_tokens():
    with pytest.raises(ValueError, match="at least one written token"):
        token_rewards(t([1.0]), t([[0.0, 0.0]]), t([[0.0, 0.0]]), t([[0, 0]]), kl_coef=0.1)


def test_the_clipped_loss_stops_the_gradient_once_the_ratio_leaves_the_trust_region():
    old = torch.zeros(1, 4)
    # ratios 1.5 (A > 0: clipped), 1.1 (inside), 0.5 (A < 0: clipped), 1.5 (A < 0: not clipped, pessimistic)
    new = torch.log(t([[1.5, 1.1, 0.5, 1.5]])).requires_grad_()
    advantages = t([[2.0, 1.0, -1.0, -1.0]])
    loss, clipfrac = policy_loss(new, old, advantages, torch.ones(1, 4), clip=0.2)
    assert loss.item() == pytest.approx((-2.4 - 1.1 + 0.8 + 1.5) / 4)
    assert clipfrac.item() == pytest.approx(0.5)
    loss.backward()
    grad = new.grad[0]
    assert grad[0] == 0 and grad[2] == 0
    assert grad[1] == pytest.approx(-1.1 / 4) and grad[3] == pytest.approx(1.5 / 4)  # d(-A r)/d log r = -A r


def test_the_clipped_loss_ignores_padding():
    loss, _ = policy_loss(t([[0.0, 5.0]]), t([[0.0, 0.0]]), t([[2.0, 100.0]]), t([[1, 0]]))
    assert loss.item() == pytest.approx(-2.0)


def test_value_loss_takes_the_worse_of_the_clipped_and_unclipped_errors():
    values, old, returns = t([[1.0, 0.0]]), t([[0.0, 0.0]]), t([[2.0, 0.5]])
    # token 0: unclipped (1 - 2)^2 = 1, clipped (0.2 - 2)^2 = 3.24 -> 3.24; token 1: 0.25 both ways
    assert value_loss(values, old, returns, torch.ones(1, 2), clip=0.2).item() == pytest.approx(0.5 * (3.24 + 0.25) / 2)


def test_whitening_gives_zero_mean_unit_variance_over_written_tokens_only():
    values = t([[1.0, 2.0, 3.0], [4.0, 99.0, 99.0]])
    mask = t([[1, 1, 1], [1, 0, 0]])
    w = whiten(values, mask)
    assert masked_mean(w, mask).item() == pytest.approx(0.0, abs=1e-6)
    assert masked_mean(w**2, mask).item() == pytest.approx(1.0, abs=1e-4)
    assert w[1, 1:].tolist() == [0.0, 0.0]


def test_the_masked_mean_of_nothing_is_zero():
    assert masked_mean(t([[3.0]]), t([[0.0]])).item() == 0.0
