"""Stage 3 on tiny budgets: the TEN prefix, the reward, PPO steps, training, reloading, evaluation."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
import torch

from evolution.cli import main
from evolution.lm._inventor import _episode, load_inventor, new_inventor, reference_logprobs
from evolution.lm._ten import TerrainEmbedding, terrain_features
from evolution.lm.dataset import ProgramRecord, write_dataset
from evolution.lm.stage2 import PROMPT, TERRAIN_SLOTS
from evolution.lm.stage3 import (
    Stage3Config,
    TerrainReward,
    evaluate_stage3,
    ppo_step,
    sample_conditional,
    train_stage3,
)
from evolution.sodarace import DEFAULT_SETTINGS, build_walker, seeds, simulate

SHORT = DEFAULT_SETTINGS.with_(sim_seconds=1.0)
TERRAINS = ("left-wall", "tunnel")


@pytest.fixture(scope="module")
def tiny_model(tiny_model, tmp_path_factory):
    """The tiny random model as a stage-2 model: recorded as trained with the terrain slots, as
    ``train_stage2`` records them (random weights need no training to read them), so the untrained
    inventor starts at the model, as it does from a real stage-2 model."""
    folder = shutil.copytree(tiny_model, tmp_path_factory.mktemp("tiny-stage2") / "model")
    (folder / "training_log.json").write_text(json.dumps({"stage2": {"terrain_slots": TERRAIN_SLOTS}}))
    return folder


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a busy machine idle threads spin for a core."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config(tmp_path, model, **changes) -> Stage3Config:
    config = Stage3Config(out=tmp_path / "inventor", model=model, terrains=TERRAINS, iterations=2, time_limit_s=None,
                          batch_size=4, minibatch_size=2, max_new_tokens=12, sim_seconds=1.0, workers=0)
    return replace(config, **changes)


# ---- the terrain embedding network

def test_a_table_ten_gives_each_terrain_its_own_k_vectors_starting_at_init():
    ten = TerrainEmbedding(TERRAINS, prefix_tokens=3, init=torch.ones(8))
    prefix = ten(ten.ids(["tunnel", "left-wall", "tunnel"]))
    assert prefix.shape == (3, 3, 8)  # (B, k, d)
    assert torch.equal(prefix, torch.ones(3, 3, 8))  # exactly init: the stage-2 model's terrain slots
    assert ten.table.shape == (2, 3, 8)  # one block per terrain, trained apart
    noisy = TerrainEmbedding(TERRAINS, prefix_tokens=3, init=torch.ones(8), noise=0.1)
    prefix = noisy(noisy.ids(["tunnel", "left-wall", "tunnel"]))
    assert torch.equal(prefix[0], prefix[2]) and not torch.equal(prefix[0], prefix[1])


def test_a_profile_ten_reads_the_terrains_geometry():
    ten = TerrainEmbedding(("left-wall", "right-wall", "bumpy", "tunnel"), prefix_tokens=2, init=torch.zeros(8),
                           kind="profile", noise=0.1)
    prefix = ten(torch.arange(4))
    assert prefix.shape == (4, 2, 8)
    assert len({tuple(p.flatten().tolist()) for p in prefix}) == 4
    features = {name: terrain_features(name) for name in ("flat", "left-wall", "right-wall", "bumpy", "tunnel")}
    assert len({tuple(f.tolist()) for f in features.values()}) == 5  # every terrain looks different
    assert features["flat"].abs().sum() == 0 and features["bumpy"][:-3].abs().sum() > 0


def test_a_terrain_the_ten_does_not_know_is_a_clear_error():
    ten = TerrainEmbedding(TERRAINS, prefix_tokens=1, init=torch.zeros(4))
    with pytest.raises(ValueError, match="unknown to this model; it knows left-wall, tunnel"):
        ten.ids(["bumpy"])
    with pytest.raises(ValueError, match="unknown terrain"):
        TerrainEmbedding(("moon",), prefix_tokens=1, init=torch.zeros(4))
    with pytest.raises(ValueError, match="kind must be one of"):
        TerrainEmbedding(TERRAINS, prefix_tokens=1, init=torch.zeros(4), kind="image")


# ---- prefix plumbing

def test_the_model_reads_the_prefix_then_the_stage2_prompt(tiny_model):
    inventor = new_inventor(tiny_model, TERRAINS, prefix_tokens=3)
    prompt = inventor.tokenizer(PROMPT, add_special_tokens=False)["input_ids"]
    context = inventor.context(torch.tensor([0, 1]))
    width = inventor.lm.config.n_embd
    assert context.shape == (2, 3 + len(prompt), width)  # (B, k + P, d)
    assert torch.equal(context[:, :3], inventor.ten(torch.tensor([0, 1])))
    assert torch.equal(context[1, 3:], inventor.lm.get_input_embeddings()(torch.tensor(prompt)))


def test_the_prefix_prompt_and_program_take_the_positions_of_the_stage2_slots_prompt_and_program(tiny_model):
    inventor = new_inventor(tiny_model, TERRAINS, prefix_tokens=3)
    p = len(inventor.prompt_ids)
    positions = inventor.positions(2, written=5)
    assert positions.shape == (2, 3 + p + 5)
    assert positions[1].tolist() == list(range(3 + p + 5))


def test_the_prefix_is_visible_to_the_model(tiny_model):
    """The model reads the prefix: changing it changes the program's log-probabilities."""
    inventor = new_inventor(tiny_model, TERRAINS)
    rollout = inventor.sample(["tunnel"], max_new_tokens=5, seed=0)
    with torch.no_grad():
        before, _ = inventor(torch.tensor([1]), rollout.tokens, rollout.mask)
        inventor.ten.table[1] += torch.randn_like(inventor.ten.table[1])  # (a constant would vanish in LayerNorm)
        after, _ = inventor(torch.tensor([1]), rollout.tokens, rollout.mask)
    assert (before - after).abs().max() > 1e-3


def test_gradients_of_the_policy_reach_the_ten_of_the_terrains_in_the_batch_only(tiny_model):
    inventor = new_inventor(tiny_model, ("left-wall", "right-wall", "tunnel"), prefix_tokens=2)
    rollout = inventor.sample(["left-wall", "tunnel"], max_new_tokens=6, seed=0)
    logprobs, values = inventor(inventor.ten.ids(rollout.terrains), rollout.tokens, rollout.mask)
    assert logprobs.shape == values.shape == rollout.tokens.shape
    ((logprobs * rollout.mask).sum() + values.sum()).backward()
    grad = inventor.ten.table.grad  # (T, k, d)
    assert grad[0].abs().sum() > 0 and grad[2].abs().sum() > 0
    assert grad[1].abs().sum() == 0  # right-wall was not sampled
    assert inventor.value_head.linear.weight.grad.abs().sum() > 0
    assert inventor.value_head.offset.grad[1] == 0 and inventor.value_head.offset.grad[0] != 0


def test_a_profile_ten_is_trained_through_the_model_too(tiny_model):
    inventor = new_inventor(tiny_model, TERRAINS, kind="profile")
    rollout = inventor.sample(list(TERRAINS), max_new_tokens=4, seed=0)
    optimizer = torch.optim.Adam(inventor.ten.parameters(), lr=1e-2)

    def gradients() -> list[torch.Tensor]:
        optimizer.zero_grad()
        logprobs, _ = inventor(inventor.ten.ids(rollout.terrains), rollout.tokens, rollout.mask)
        logprobs.sum().backward()
        return [p.grad if p.grad is not None else torch.zeros(1) for p in inventor.ten.parameters()]

    # the MLP's output layer starts at zero (every terrain starts exactly at the slots' embedding),
    # so only its first layer waits a step for gradients
    assert sum(g.abs().sum() > 0 for g in gradients()) == len(list(inventor.ten.parameters())) - 2
    optimizer.step()
    assert all(g.abs().sum() > 0 for g in gradients())


def test_scored_log_probabilities_are_those_the_tokens_were_sampled_with(tiny_model):
    """On-policy: the forward pass over [prefix, prompt, written tokens] reproduces generate's logits."""
    from transformers import GenerationConfig

    inventor = new_inventor(tiny_model, TERRAINS)
    ids = torch.tensor([0, 1, 1])
    torch.manual_seed(1)
    out = inventor.generate(ids, GenerationConfig(do_sample=True, top_k=0, max_new_tokens=8),
                            return_dict_in_generate=True, output_logits=True)
    tokens = out.sequences  # (B, R)
    expected = torch.stack(out.logits, dim=1).log_softmax(-1).gather(-1, tokens[..., None]).squeeze(-1)
    with torch.no_grad():
        logprobs, _ = inventor(ids, tokens, torch.ones(tokens.shape))
    assert logprobs == pytest.approx(expected, abs=1e-4)


def test_an_episode_ends_at_end_of_text_or_at_the_token_completing_a_stop_string(tiny_model):
    inventor = new_inventor(tiny_model, TERRAINS)
    tok, eos = inventor.tokenizer, inventor.tokenizer.eos_token_id
    body = tok("x = 1\n", add_special_tokens=False)["input_ids"]
    stop = tok.convert_tokens_to_ids("<MSG>")
    assert _episode(body + [eos, eos], tok, ["<MSG>"]) == (len(body) + 1, "x = 1\n")  # the eos was written
    assert _episode(body + [stop, eos, eos], tok, ["<MSG>"]) == (len(body) + 1, "x = 1\n")
    assert _episode(body, tok, ["<MSG>"]) == (len(body), "x = 1\n")  # ran out of tokens


def test_sampling_right_pads_each_episode_after_its_last_written_token(quick_model):
    inventor = new_inventor(quick_model, TERRAINS)
    rollout = inventor.sample(["tunnel"] * 6, max_new_tokens=40, seed=3)
    lengths = rollout.mask.sum(dim=1)
    assert (lengths >= 1).all() and lengths.min() < rollout.mask.shape[1]  # the eos-biased model stops early
    for row, n in zip(rollout.mask, lengths.long()):
        assert row[:n].eq(1).all() and row[n:].eq(0).all()
    assert len(rollout.texts) == 6 and all(isinstance(t, str) for t in rollout.texts)


# ---- the reward

def test_a_failed_program_gets_the_fixed_penalty():
    reward = TerrainReward(settings=SHORT, failure_penalty=-7.0, workers=0)
    assert reward(["def make_walker(:\n", "", "x = 1\n"], ["left-wall", "tunnel", "bumpy"]) == [-7.0, -7.0, -7.0]


def test_a_seed_program_earns_the_distance_its_walker_travels_on_that_terrain():
    square = seeds.get_seed("square").program
    with TerrainReward(settings=SHORT, workers=0) as reward:
        scores = reward([square, square], ["left-wall", "right-wall"])
    for score, terrain in zip(scores, ["left-wall", "right-wall"]):
        assert score == pytest.approx(simulate(build_walker(square), terrain, SHORT).fitness)
    assert scores[0] > 0


def test_the_reward_wants_one_terrain_per_program():
    with pytest.raises(ValueError, match="one terrain per program"):
        TerrainReward(workers=0)(["a", "b"], ["tunnel"])


# ---- PPO on the inventor

def test_a_ppo_step_makes_well_scored_programs_likelier_and_badly_scored_ones_less_likely(tiny_model, tmp_path):
    config = tiny_config(tmp_path, tiny_model, ppo_epochs=4, minibatch_size=4, ten_learning_rate=3e-2,
                         lm_learning_rate=1e-3, kl_coef=0.0)
    policy = new_inventor(tiny_model, TERRAINS)
    reference = new_inventor(tiny_model, TERRAINS).lm.requires_grad_(False)
    rollout = policy.sample(["left-wall", "left-wall", "tunnel", "tunnel"], max_new_tokens=8, seed=0)
    scores = torch.tensor([30.0, -5.0, -5.0, 30.0])

    def episode_logprobs() -> torch.Tensor:
        with torch.no_grad():
            logprobs, _ = policy(policy.ten.ids(rollout.terrains), rollout.tokens, rollout.mask)
        return (logprobs * rollout.mask).sum(dim=1)

    before = episode_logprobs()
    optimizer = torch.optim.AdamW([{"params": list(policy.lm.parameters()), "lr": config.lm_learning_rate},
                                   {"params": [*policy.ten.parameters(), *policy.value_head.parameters()],
                                    "lr": config.ten_learning_rate}])
    stats = ppo_step(config, policy, reference, optimizer, rollout, scores)
    change = episode_logprobs() - before
    assert change[0] > 0 and change[3] > 0
    assert change[1] < 0 and change[2] < 0
    # the KL statistic: summed log-ratio to the reference (reading its slots and the prompt) before the update
    ref = reference_logprobs(reference, policy.reference_ids, rollout.tokens, rollout.mask, 1.0)
    assert stats["kl"] == pytest.approx(float((before - (ref * rollout.mask).sum(dim=1)).mean()), abs=1e-4)
    assert set(stats) >= {"policy_loss", "value_loss", "clipfrac", "tokens"}


def test_a_bad_training_setting_is_refused_with_the_fix(tiny_model, tmp_path):
    with pytest.raises(ValueError, match="smaller than the 2 terrains"):
        train_stage3(tiny_config(tmp_path, tiny_model, batch_size=1))
    with pytest.raises(ValueError, match="unknown terrain"):
        train_stage3(tiny_config(tmp_path, tiny_model, terrains=("left-wall", "lava")))
    with pytest.raises(FileNotFoundError, match="train-stage2"):
        train_stage3(tiny_config(tmp_path, tmp_path / "missing"))


# ---- end to end

class LengthReward(TerrainReward):
    """A stand-in for the simulator whose scores always differ: a program's length.

    (The random tiny model's programs all fail in the simulator; equal scores leave PPO nothing
    to learn, as the untrained inventor is exactly the reference: no KL either.)"""

    def results(self, completions, terrains):
        from evolution.types import Result

        return [Result(i, float(len(text)), (0.0, 0.0, 0.0)) for i, text in enumerate(completions)]


def test_two_ppo_iterations_train_save_and_reload_a_terrain_conditioned_inventor(tiny_model, tmp_path):
    seen = []
    out = train_stage3(tiny_config(tmp_path, tiny_model), on_iteration=seen.append, reward=LengthReward(workers=0))
    assert [s["iteration"] for s in seen] == [1, 2]
    assert all(set(s["terrains"]) == set(TERRAINS) and s["terrains"]["tunnel"]["episodes"] == 2 for s in seen)
    record = json.loads((out / "training_log.json").read_text())
    assert record["iterations"] == 2 and len(record["history"]) == 2
    assert (out / "reward_curve.png").stat().st_size > 0

    inventor = load_inventor(out)
    untrained = new_inventor(tiny_model, TERRAINS)  # the same seed: the TEN training started from
    assert inventor.terrains == TERRAINS and inventor.ten.prefix_tokens == 4
    assert not torch.equal(inventor.ten.table, untrained.ten.table)
    assert any(not torch.equal(a, b) for a, b in zip(inventor.lm.parameters(), untrained.lm.parameters()))
    saved = torch.load(out / "ten.pt", weights_only=True)
    assert torch.equal(inventor.ten.table, saved["ten"]["table"])
    texts = sample_conditional(inventor, "tunnel", 3, batch=2, max_new_tokens=6)
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    with pytest.raises(ValueError, match="unknown to this model"):
        sample_conditional(inventor, "bumpy", 1, max_new_tokens=4)


def test_the_evaluation_compares_the_inventor_with_the_best_of_n_on_each_terrain(tiny_model, tmp_path):
    out = train_stage3(tiny_config(tmp_path, tiny_model, iterations=1))
    square = seeds.get_seed("square").program
    dataset = write_dataset([ProgramRecord(square, (0, 0, 0), 1.0, 1.0, "r", 1)], tmp_path / "d.jsonl")
    evaluation = evaluate_stage3(out, samples=2, conditional=2, dataset=dataset, workers=0, plots=tmp_path / "plots")
    assert evaluation["total"] == 2 and set(evaluation["terrains"]) == set(TERRAINS)
    for terrain, row in evaluation["terrains"].items():
        assert row["conditional"]["n"] == 2 and row["stage2"]["n"] == 2 and row["dataset"]["n"] == 1
        # a random tiny model writes no walker; the dataset's Square seed walks
        assert row["dataset"]["best"] == pytest.approx(simulate(build_walker(square), terrain, SHORT).fitness)
        assert row["conditional"]["median"] == 0.0 and row["beats"] is False
        assert (tmp_path / "plots" / f"eval-{terrain}.png").stat().st_size > 0
    assert evaluation["beats"] == 0


def test_train_then_evaluate_stage3_from_the_command_line(tiny_model, tmp_path, capsys):
    out = tmp_path / "inventor"
    assert main(["train-stage3", "--model", str(tiny_model), "--terrains", "walls-bumpy", "--out", str(out),
                 "--iterations", "1", "--batch", "3", "--minibatch", "3", "--max-new-tokens", "8", "--seconds", "1",
                 "--workers", "0"]) == 0
    printed = capsys.readouterr().out
    assert "iteration 1/1" in printed and "left-wall" in printed and "bumpy" in printed
    assert f"eval-stage3 --model {out}" in printed
    assert json.loads((out / "stage3.json").read_text())["terrains"] == ["left-wall", "right-wall", "bumpy"]
    assert main(["eval-stage3", "--model", str(out), "--samples", "2", "--conditional", "2", "--workers", "0",
                 "--out", str(tmp_path / "eval.json")]) == 0
    table = capsys.readouterr().out
    assert "best-of-N on 0 of 3 terrains" in table
    assert all(t in table for t in ("left-wall", "right-wall", "bumpy"))
    assert json.loads((tmp_path / "eval.json").read_text())["total"] == 3


def test_the_command_line_refuses_an_unknown_terrain(tiny_model, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train-stage3", "--model", str(tiny_model), "--terrains", "left-wall,lava", "--out", str(tmp_path / "x")])
    assert "give distinct terrains" in capsys.readouterr().err


class FirstLetterReward(TerrainReward):
    """A stand-in for the simulator, fast enough to train against in a test: on left-wall a
    program scores 10 when it starts with a letter, on tunnel when it does not."""

    def results(self, completions, terrains):
        from evolution.types import Result

        return [Result(i, 10.0 * (text[:1].isalpha() == (terrain == "left-wall")), (0.0, 0.0, 0.0))
                for i, (text, terrain) in enumerate(zip(completions, terrains))]


def test_ppo_through_the_ten_learns_to_write_differently_for_each_terrain(tiny_model, tmp_path):
    config = tiny_config(tmp_path, tiny_model, iterations=20, batch_size=16, minibatch_size=8, max_new_tokens=4,
                         ten_learning_rate=3e-2, lm_learning_rate=1e-3)

    def letter_rate(inventor, terrain):
        texts = sample_conditional(inventor, terrain, 64, top_p=1.0, max_new_tokens=4, seed=1)
        return sum(t[:1].isalpha() for t in texts) / len(texts)

    untrained = new_inventor(tiny_model, TERRAINS)
    assert abs(letter_rate(untrained, "left-wall") - letter_rate(untrained, "tunnel")) < 0.1
    trained = load_inventor(train_stage3(config, reward=FirstLetterReward(workers=0)))
    assert letter_rate(trained, "left-wall") - letter_rate(trained, "tunnel") > 0.4
