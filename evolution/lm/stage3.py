"""Stage 3: a conditional inventor, trained with RL to write walkers for the terrain it is given.

The stage-2 model writes a whole program after ``stage2.PROMPT``. Here a terrain embedding
network (``TerrainEmbedding``) turns the terrain's name into k vectors that are prepended to
the prompt's token embeddings (``inputs_embeds``); the model and the TEN are then trained
together with PPO (``_ppo``): reward = the distance the program's walker travels on that
terrain (sandboxed, simulated), a fixed penalty for a program that fails, and a KL penalty
that keeps the model near the frozen stage-2 model. The paper trains on the terrain sets
{left-wall, right-wall, tunnel} and {left-wall, right-wall, bumpy} (``TERRAIN_SETS``).

Choices the paper leaves open: the k prefix vectors fill the k terrain slots (end-of-text
tokens) that the stage-2 model was trained to read before its prompt (``stage2.TERRAIN_SLOTS``)
and start as the end-of-text embedding, so the untrained inventor writes exactly what the
stage-2 model writes; the KL reference is the stage-2 model reading what it was trained on
(its slots, then the prompt); each iteration samples every terrain equally often, and scores
are centred per terrain within the iteration (a per-terrain baseline: distances differ in
scale between terrains) before GAE; training samples at temperature 1 without nucleus
cut-off, so the PPO ratios are exact.

Evaluation, as the paper does it (``evaluate_stage3``): on each terrain, the conditional
model's samples against the best of N (default 1,024) samples from the stage-2 model and the
best of N programs of the stage-2 dataset, evaluated on that terrain.

``python -m evolution train-stage3 --model STAGE2_DIR --terrains left-wall,right-wall,tunnel --out DIR``
then ``python -m evolution eval-stage3 --model DIR``.
"""

from __future__ import annotations

import json
import logging
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from evolution.lm._inventor import CONFIG_FILE, Inventor, Rollout, load_inventor, load_lm, new_inventor, reference_logprobs
from evolution.lm._ppo import gae, policy_loss, token_rewards, value_loss, whiten
from evolution.lm._ten import KINDS
from evolution.lm.stage2 import TERRAIN_SLOTS
from evolution.lm.terrain_sets import TERRAIN_SETS
from evolution.sodarace import DEFAULT_SETTINGS, SimSettings, get_terrain
from evolution.types import Candidate, Result

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage3Config:
    """One stage-3 training job. Defaults show learning in about 20 minutes on two CPU cores.

    Attributes:
        out: Folder to write (the model, tokenizer, ``ten.pt``, ``stage3.json``, the log and plot).
        model: The stage-2 model folder to start from (also the frozen KL reference).
        terrains: Terrains to train on; every iteration samples them equally often.
        prefix_tokens: k, prefix vectors the TEN writes; by default the stage-2 model's terrain
            slots (``TERRAIN_SLOTS``), the only k at which the untrained inventor is the
            stage-2 model (``new_inventor`` warns at another).
        ten: ``"table"`` (a learned block per terrain) or ``"profile"`` (an MLP over geometry).

    The rest are commented where they are set; the learning rates, KL coefficient and reward
    scale are this project's choices (the paper does not give them). With a small stage-2 model
    on two busy CPU cores, the earlier rates (LM 1e-4, TEN 1e-2) took the KL to the stage-2 model
    from 0 to 87 nats per program in the first iteration and every program after it failed,
    once the inventor started exactly as its stage-2 model (terrain slots).
    """

    out: Path
    model: Path
    terrains: tuple[str, ...] = TERRAIN_SETS["walls-tunnel"]
    prefix_tokens: int = TERRAIN_SLOTS
    ten: str = "table"
    iterations: int = 200  # most PPO iterations
    time_limit_s: float | None = 20 * 60  # stop (and save) after this long; None: no limit
    batch_size: int = 24  # episodes (programs) per iteration, spread evenly over the terrains
    minibatch_size: int = 8  # episodes per gradient step
    ppo_epochs: int = 2  # passes over each iteration's episodes
    lm_learning_rate: float = 1e-5  # the language model's weights (1e-4 broke a 4M stage-2 model in one iteration)
    ten_learning_rate: float = 1e-3  # the TEN and the value head; the prefix starts at the end-of-text
    # embedding, whose entries are ~0.05: 1e-2 (Adam moves each entry ~lr per step) overwrote it at once
    kl_coef: float = 0.05  # beta: KL penalty to the stage-2 model, per token
    gamma: float = 1.0  # discount (the only real reward comes at the end)
    lam: float = 0.95  # GAE lambda
    clip: float = 0.2  # PPO ratio clip
    value_clip: float = 0.2  # how far a value may move from its rollout value in one iteration
    vf_coef: float = 0.1  # weight of the value loss
    max_grad_norm: float = 1.0  # gradient clipping
    reward_scale: float = 0.1  # reward = reward_scale * distance (distances run ~0-100 units)
    failure_penalty: float = -5.0  # score of a program that fails, in distance units
    center_per_terrain: bool = True  # subtract each terrain's mean score in the batch (a per-terrain baseline)
    temperature: float = 1.0  # sampling temperature (no top-p in training: samples are exactly on-policy)
    max_new_tokens: int = 768  # longest program in tokens
    sim_seconds: float | None = None  # measured simulated seconds; None: DEFAULT_SETTINGS'
    workers: int = 2  # evaluation processes
    device: str | None = None  # None: cuda when available, else cpu
    threads: int | None = None  # torch CPU threads; None: torch's default
    seed: int = 0

    def check(self) -> None:
        """Raise ``ValueError`` with the fix for a setting that cannot work."""
        for name in self.terrains:
            get_terrain(name)
        if not self.terrains or len(set(self.terrains)) != len(self.terrains):
            raise ValueError(f"give one or more distinct terrains, got {list(self.terrains)}")
        if self.ten not in KINDS:
            raise ValueError(f"ten must be one of {', '.join(KINDS)}, got {self.ten!r}")
        counts = ("prefix_tokens", "iterations", "batch_size", "minibatch_size", "ppo_epochs", "max_new_tokens")
        if too_small := [name for name in counts if getattr(self, name) < 1]:
            raise ValueError(f"{', '.join(too_small)} must be >= 1")
        if self.batch_size < len(self.terrains):
            raise ValueError(f"batch_size {self.batch_size} is smaller than the {len(self.terrains)} terrains; "
                             "raise it so every terrain is sampled each iteration")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0 for sampling, got {self.temperature}")


class TerrainReward:
    """The reward: how far each program's walker travels on its terrain; failures get a penalty.

    ``reward(completions, terrains) -> list[float]``. Programs run in the sandbox and are
    simulated by ``evolution.evaluate`` over ``workers`` processes (one pool per terrain,
    kept until ``close``).

    Args:
        settings: Simulation settings.
        failure_penalty: Score of a program that fails (no program, sandbox or walker error,
            diverged simulation).
        workers: Evaluation processes per terrain; 0 evaluates in this process.
    """

    def __init__(self, *, settings: SimSettings = DEFAULT_SETTINGS, failure_penalty: float = -5.0, workers: int = 2) -> None:
        self.settings = settings
        self.failure_penalty = failure_penalty
        self.workers = workers
        self._evaluators: dict[str, Any] = {}

    def __enter__(self) -> TerrainReward:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, completions: Sequence[str], terrains: Sequence[str]) -> list[float]:
        return [self.score(r) for r in self.results(completions, terrains)]

    def score(self, result: Result) -> float:
        """A result's score: its distance, or the failure penalty."""
        return float(result.fitness) if result.valid else self.failure_penalty

    def results(self, completions: Sequence[str], terrains: Sequence[str]) -> list[Result]:
        """One ``Result`` per program, evaluated on the terrain beside it."""
        from evolution.evaluate import EvalConfig, Evaluator

        if len(completions) != len(terrains):
            raise ValueError(f"got {len(completions)} programs for {len(terrains)} terrains; give one terrain per program")
        out: list[Result | None] = [None] * len(completions)
        for terrain in dict.fromkeys(terrains):
            if terrain not in self._evaluators:
                self._evaluators[terrain] = Evaluator(EvalConfig(terrain=get_terrain(terrain).name, settings=self.settings),
                                                      workers=self.workers)
            where = [i for i, t in enumerate(terrains) if t == terrain]
            candidates = [_candidate(i, completions[i]) for i in where]
            for i, result in zip(where, self._evaluators[terrain].evaluate(candidates)):
                out[i] = result
        return out  # type: ignore[return-value]

    def close(self) -> None:
        """Stop the evaluation processes."""
        for evaluator in self._evaluators.values():
            evaluator.close()
        self._evaluators.clear()


def _candidate(i: int, text: str) -> Candidate:
    if text.strip():
        return Candidate(i, 0, text)
    return Candidate(i, 0, None, failure="no_change", failure_message="the model wrote nothing")


def _settings(sim_seconds: float | None) -> SimSettings:
    return DEFAULT_SETTINGS if sim_seconds is None else DEFAULT_SETTINGS.with_(sim_seconds=sim_seconds)


def train_stage3(config: Stage3Config, *, on_iteration: Callable[[dict[str, Any]], bool | None] | None = None,
                 reward: TerrainReward | None = None) -> Path:
    """Train a conditional inventor with PPO; returns its folder (``config.out``).

    ``on_iteration(stats)`` is called after every iteration with that iteration's figures
    (``iteration``, ``terrains`` -> {``score``, ``valid_rate``, ``best``}, ``kl``, losses,
    ``seconds``); returning True stops training (the model is saved either way).
    ``reward``: what scores the programs (default: a ``TerrainReward`` from the config's
    simulation settings, failure penalty and workers; a given one is not closed here).

    Returns:
        ``config.out`` with the model (``load_inventor``), ``training_log.json`` (config and
        per-iteration figures) and ``reward_curve.png``.

    Raises:
        ValueError: For a setting that cannot work (``Stage3Config.check``).
        FileNotFoundError: If ``config.model`` is not a model folder.
    """
    # ---- setup: policy (stage-2 model + TEN + value head), frozen reference, optimizer
    config.check()
    if config.threads:
        torch.set_num_threads(config.threads)
    policy = new_inventor(config.model, config.terrains, prefix_tokens=config.prefix_tokens, kind=config.ten,
                          device=config.device, seed=config.seed)
    reference, _ = load_lm(config.model, config.device)
    reference.requires_grad_(False)
    optimizer = torch.optim.AdamW([
        {"params": list(policy.lm.parameters()), "lr": config.lm_learning_rate},
        {"params": [*policy.ten.parameters(), *policy.value_head.parameters()], "lr": config.ten_learning_rate},
    ], weight_decay=0.0)
    log.info("stage 3: %.1fM-parameter model from %s, TEN %s (k=%d) for %s, %d episodes per iteration on %s",
             policy.lm.num_parameters() / 1e6, config.model, config.ten, config.prefix_tokens, ", ".join(config.terrains),
             config.batch_size, policy.device)
    history: list[dict[str, Any]] = []
    started = time.monotonic()
    owned = reward is None
    if reward is None:
        reward = TerrainReward(settings=_settings(config.sim_seconds), failure_penalty=config.failure_penalty,
                               workers=config.workers)
    try:  # Ctrl-C stops training; what was learned so far is saved
        for iteration in range(1, config.iterations + 1):
            stats = _iteration(config, policy, reference, optimizer, reward, iteration)
            stats["seconds"] = time.monotonic() - started
            history.append(stats)
            _log_iteration(stats, config.iterations)
            stop = on_iteration(stats) if on_iteration is not None else None
            if stop:
                log.info("stopped after iteration %d", iteration)
                break
            if config.time_limit_s is not None and stats["seconds"] >= config.time_limit_s:
                log.info("time limit of %.0f s reached after iteration %d; saving", config.time_limit_s, iteration)
                break
    except KeyboardInterrupt:
        log.warning("interrupted after %d iterations; saving", len(history))
    finally:
        if owned:
            reward.close()

    # ---- save: the model folder, the figures, the curve
    out = policy.save(config.out, {"stage2": str(Path(config.model).resolve()), "sim_seconds": config.sim_seconds,
                                   "max_new_tokens": config.max_new_tokens})
    record = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
              "iterations": len(history), "wall_s": time.monotonic() - started, "history": history}
    (out / "training_log.json").write_text(json.dumps(record, indent=1))
    plot_rewards(history, out / "reward_curve.png")
    return out


def _iteration(config: Stage3Config, policy: Inventor, reference: Any, optimizer: torch.optim.Optimizer,
               reward: TerrainReward, iteration: int) -> dict[str, Any]:
    """One PPO iteration: sample every terrain equally often, race the programs, update."""
    terrains = [config.terrains[i % len(config.terrains)] for i in range(config.batch_size)]
    policy.eval()  # no dropout: the ratio of new to old log-probabilities must start at 1
    rollout = policy.sample(terrains, max_new_tokens=config.max_new_tokens, temperature=config.temperature,
                            seed=config.seed * 100_003 + iteration)
    results = reward.results(rollout.texts, terrains)
    scores = torch.tensor([reward.score(r) for r in results], device=policy.device)  # (B,)
    stats = ppo_step(config, policy, reference, optimizer, rollout, scores)
    per_terrain = {}
    for terrain in config.terrains:
        mine = [(r, float(sc)) for r, sc, t in zip(results, scores, terrains) if t == terrain]
        valid = [r.fitness for r, _ in mine if r.valid]
        per_terrain[terrain] = {"score": statistics.fmean(sc for _, sc in mine), "valid_rate": len(valid) / len(mine),
                                "best": max(valid, default=None), "episodes": len(mine)}
    return {"iteration": iteration, "terrains": per_terrain, **stats}


def ppo_step(config: Stage3Config, policy: Inventor, reference: Any, optimizer: torch.optim.Optimizer,
             rollout: Rollout, scores: torch.Tensor) -> dict[str, float]:
    """PPO on one batch of episodes: ``config.ppo_epochs`` passes of clipped updates.

    Args:
        config: Settings (KL coefficient, GAE, clips, minibatch size, reward scale, ...).
        policy: The inventor being trained (its TEN, LM and value head get gradients).
        reference: The frozen stage-2 model (the KL penalty's reference).
        optimizer: Over the policy's parameters.
        rollout: The episodes, sampled from ``policy`` at ``config.temperature``.
        scores: ``(B,)`` episode scores in distance units (``reward_scale`` is applied here).

    Returns:
        Mean ``policy_loss``, ``value_loss`` and ``clipfrac`` over the updates, ``kl`` (the mean
        over episodes of the summed per-token log-ratio to the reference before the update) and
        ``tokens`` (mean episode length).
    """
    # ---- score: old log-probabilities and values, the reference's log-probabilities, advantages
    ids = policy.ten.ids(rollout.terrains).to(policy.device)
    tokens, mask = rollout.tokens, rollout.mask  # (B, R)
    n, size = len(ids), config.minibatch_size
    with torch.no_grad():
        old_logprobs, old_values = _chunked(lambda s: policy(ids[s], tokens[s], mask[s], config.temperature), n, size)
        (ref_logprobs,) = _chunked(lambda s: (reference_logprobs(reference, policy.reference_ids, tokens[s], mask[s],
                                                                 config.temperature),), n, size)
        episode = scores * config.reward_scale
        if config.center_per_terrain:
            episode = episode - _terrain_means(episode, ids)
        rewards, kl = token_rewards(episode, old_logprobs, ref_logprobs, mask, kl_coef=config.kl_coef)
        advantages, returns = gae(rewards, old_values, mask, gamma=config.gamma, lam=config.lam)
        advantages = whiten(advantages, mask)

    # ---- optimise: clipped policy and value losses over shuffled minibatches
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    losses: dict[str, list[float]] = {"policy_loss": [], "value_loss": [], "clipfrac": []}
    for _ in range(config.ppo_epochs):
        for s in torch.randperm(n, device=ids.device).split(size):
            logprobs, values = policy(ids[s], tokens[s], mask[s], config.temperature)
            pg, clipfrac = policy_loss(logprobs, old_logprobs[s], advantages[s], mask[s], clip=config.clip)
            vf = value_loss(values, old_values[s], returns[s], mask[s], clip=config.value_clip)
            optimizer.zero_grad(set_to_none=True)
            (pg + config.vf_coef * vf).backward()
            nn.utils.clip_grad_norm_(parameters, config.max_grad_norm)
            optimizer.step()
            for name, value in (("policy_loss", pg), ("value_loss", vf), ("clipfrac", clipfrac)):
                losses[name].append(value.item())
    return {"kl": kl.sum(dim=1).mean().item(), "tokens": mask.sum(dim=1).mean().item(),
            **{name: statistics.fmean(values) for name, values in losses.items()}}


def _terrain_means(values: torch.Tensor, terrain_ids: torch.Tensor) -> torch.Tensor:
    """``(B,)`` -> ``(B,)``: each entry replaced by the mean over the entries of its terrain."""
    sums = torch.zeros(int(terrain_ids.max()) + 1, device=values.device).index_add_(0, terrain_ids, values)
    counts = torch.bincount(terrain_ids).to(values.dtype)
    return (sums / counts.clamp(min=1))[terrain_ids]


def _chunked(fn: Callable[[slice], tuple[torch.Tensor, ...]], n: int, size: int) -> tuple[torch.Tensor, ...]:
    """``fn`` over slices of ``n`` rows, ``size`` at a time, outputs concatenated (bounds memory)."""
    parts = [fn(slice(start, start + size)) for start in range(0, n, size)]
    return tuple(torch.cat(column) for column in zip(*parts))


def _log_iteration(stats: dict[str, Any], total: int) -> None:
    terrains = "  ".join(f"{name} {t['score']:.2f} ({t['valid_rate']:.0%} valid)" for name, t in stats["terrains"].items())
    log.info("iteration %d/%d  reward %s  kl %.3f  tokens %.0f  (%.0f s)", stats["iteration"], total, terrains,
             stats["kl"], stats["tokens"], stats["seconds"])


def plot_rewards(history: Sequence[dict[str, Any]], path: Path) -> None:
    """Draw the mean score per terrain over iterations (distance, or the penalty for failures)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    iterations = [h["iteration"] for h in history]
    window = max(1, min(10, len(history) // 5))
    for i, terrain in enumerate(history[0]["terrains"] if history else {}):
        scores = [h["terrains"][terrain]["score"] for h in history]
        smooth = [statistics.fmean(scores[max(0, j - window + 1) : j + 1]) for j in range(len(scores))]
        ax.plot(iterations, scores, color=f"C{i}", alpha=0.25, linewidth=0.8)
        ax.plot(iterations, smooth, color=f"C{i}", label=f"{terrain} ({window}-iteration mean)" if window > 1 else terrain)
    ax.set_xlabel("PPO iteration")
    ax.set_ylabel("mean reward (distance; failures penalised)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def sample_conditional(
    inventor: Inventor, terrain: str, n: int, *, batch: int = 32, temperature: float = 1.0, top_p: float = 0.95,
    max_new_tokens: int = 768, seed: int = 0, on_batch: Callable[[int], None] | None = None,
) -> list[str]:
    """``n`` programs the inventor writes for ``terrain``.

    Raises:
        ValueError: For a terrain the inventor was not trained on.
    """
    texts: list[str] = []
    for start in range(0, n, batch):
        k = min(batch, n - start)
        texts += inventor.sample([terrain] * k, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                                 seed=seed + start).texts
        if on_batch is not None:
            on_batch(len(texts))
    return texts


def _distances(results: Sequence[Result]) -> list[float]:
    """Distance per program; a failed program travelled nowhere (0)."""
    return [float(r.fitness) if r.valid else 0.0 for r in results]


def evaluate_stage3(
    model: Path, *, samples: int = 1024, conditional: int = 64, baseline: Path | None = None, dataset: Path | None = None,
    workers: int = 2, sim_seconds: float | None = None, top_p: float = 0.95, seed: int = 0, plots: Path | None = None,
    on_progress: Callable[[str, int, int], None] | None = None, keep: int = 0,
) -> dict[str, Any]:
    """The paper's evaluation: per terrain, the inventor against the best of N unconditional programs.

    On each terrain the inventor writes ``conditional`` programs; the stage-2 model writes
    ``samples`` programs (once: they are unconditional) and up to ``samples`` programs are
    drawn from the stage-2 dataset; all are evaluated on that terrain. The inventor *beats*
    (matches or beats) best-of-N on a terrain when the median distance of its programs (a
    typical single draw; failures count as 0) is above 0 and at least the best distance among
    the N programs of each baseline. Both models sample at temperature 1 with nucleus ``top_p``.

    Args:
        model: A folder from ``train_stage3``.
        samples: N, programs per baseline.
        conditional: Programs the inventor writes per terrain.
        baseline: The stage-2 model (default: the one the inventor was trained from).
        dataset: The stage-2 dataset (default: the one the stage-2 model's training log names;
            left out, with a warning, when there is none).
        workers: Evaluation processes.
        sim_seconds: Measured simulated seconds (default: as in training).
        top_p: Nucleus sampling for both models.
        seed: Sampling seed.
        plots: Folder for one plot per terrain (``eval-<terrain>.png``); ``None``: no plots.
        on_progress: ``on_progress(what, done, total)`` while programs are sampled.
        keep: Each source also lists its ``keep`` farthest-walking distinct programs
            (``programs``: ``[{text, distance}]``, best first), e.g. for replays.

    Returns:
        ``{"terrains": {name: {"conditional": {...}, "stage2": {...}, "dataset": {...} | None,
        "beats": bool}}, "beats": count, "total": terrains, ...}``; each source has ``n``,
        ``valid_rate``, ``median``, ``mean``, ``best`` and ``distances``.

    Raises:
        FileNotFoundError: If a model folder or the dataset is missing.
        ValueError: If ``samples`` or ``conditional`` is below 1.
    """
    from evolution.lm.dataset import read_dataset
    from evolution.lm.stage2 import sample_programs

    if samples < 1 or conditional < 1:
        raise ValueError("samples and conditional must be >= 1")
    inventor = load_inventor(model)
    meta = json.loads((Path(model) / CONFIG_FILE).read_text())
    baseline = Path(baseline or meta["stage2"])
    if not (baseline / "config.json").is_file():
        raise FileNotFoundError(f"the stage-2 model {baseline} is gone; pass --baseline STAGE2_DIR")
    dataset = dataset or _stage2_dataset(baseline)
    if dataset is not None and not Path(dataset).is_file():
        raise FileNotFoundError(f"the dataset {dataset} does not exist; pass --dataset FILE")
    sim_seconds = sim_seconds if sim_seconds is not None else meta.get("sim_seconds")
    max_new = int(meta.get("max_new_tokens", 768))

    def progress(what: str, total: int) -> Callable[[int], None] | None:
        return None if on_progress is None else (lambda done: on_progress(what, done, total))

    stage2_texts, _ = sample_programs(baseline, samples, max_new_tokens=max_new, top_p=top_p, seed=seed,
                                      on_batch=progress("stage-2 model", samples))
    dataset_texts: list[str] = []
    if dataset is not None:
        records = read_dataset(Path(dataset))
        dataset_texts = [r.text for r in random.Random(seed).sample(records, min(samples, len(records)))]
    else:
        log.warning("no stage-2 dataset known for %s; the dataset column is left out (pass --dataset FILE)", baseline)
    table: dict[str, Any] = {}
    with TerrainReward(settings=_settings(sim_seconds), workers=workers) as reward:
        for terrain in inventor.terrains:
            mine = sample_conditional(inventor, terrain, conditional, top_p=top_p, max_new_tokens=max_new, seed=seed,
                                      on_batch=progress(f"inventor on {terrain}", conditional))
            sources = (("conditional", mine), ("stage2", stage2_texts), ("dataset", dataset_texts))
            row = {source: _summary(reward.results(texts, [terrain] * len(texts)), texts, keep=keep) if texts else None
                   for source, texts in sources}  # no dataset programs: None
            bar = max(row[k]["best"] for k in ("stage2", "dataset") if row[k] is not None)
            median = row["conditional"]["median"]
            row["beats"] = median > 0 and median >= bar  # matching best-of-N at zero (nothing walks) is no win
            table[terrain] = row
            if plots is not None:
                plot_terrain(terrain, row, Path(plots) / f"eval-{terrain}.png")
    return {"model": str(model), "baseline": str(baseline), "dataset": str(dataset) if dataset else None,
            "samples": samples, "conditional": conditional, "terrains": table,
            "beats": sum(r["beats"] for r in table.values()), "total": len(table)}


def _stage2_dataset(stage2: Path) -> Path | None:
    record = Path(stage2) / "training_log.json"
    if not record.is_file():
        return None
    return Path(p) if (p := json.loads(record.read_text()).get("stage2", {}).get("dataset")) else None


def _summary(results: Sequence[Result], texts: Sequence[str], *, keep: int = 0) -> dict[str, Any]:
    distances = _distances(results)
    summary = {"n": len(results), "valid_rate": sum(r.valid for r in results) / len(results),
               "median": statistics.median(distances), "mean": statistics.fmean(distances), "best": max(distances),
               "distances": distances}
    if keep:
        walked = {t: d for t, d, r in zip(texts, distances, results) if r.valid}  # distinct programs
        summary["programs"] = [{"text": t, "distance": d} for t, d in sorted(walked.items(), key=lambda p: -p[1])[:keep]]
    return summary


def format_table(evaluation: dict[str, Any]) -> list[str]:
    """The evaluation as text lines: one row per terrain (the stage-2 model's median next to the
    inventor's shows what RL did to a typical program; best-of-N is the paper's bar)."""
    lines = [f"{'terrain':<11} {'inventor median':>15} {'mean':>7} {'best':>7} {'valid':>6} "
             f"{'stage-2 median':>14} {'stage-2 best-of-N':>18} {'dataset best-of-N':>18}  beats"]
    for terrain, row in evaluation["terrains"].items():
        c, s, d = row["conditional"], row["stage2"], row["dataset"]
        lines.append(f"{terrain:<11} {c['median']:>15.2f} {c['mean']:>7.2f} {c['best']:>7.2f} {c['valid_rate']:>6.0%} "
                     f"{s['median']:>14.2f} {s['best']:>11.2f} (N={s['n']:<4}) "
                     + (f"{d['best']:>11.2f} (N={d['n']:<4})" if d else f"{'-':>18}")
                     + f"  {'yes' if row['beats'] else 'no'}")
    return lines


def plot_terrain(terrain: str, row: dict[str, Any], path: Path) -> None:
    """Histogram of the inventor's distances on ``terrain``, with each baseline's best of N."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    c = row["conditional"]
    ax.hist(c["distances"], bins=min(30, max(5, c["n"] // 2)), color="tab:blue", alpha=0.7,
            label=f"inventor ({c['n']} programs)")
    ax.axvline(c["median"], color="tab:blue", linestyle="-", label=f"inventor median {c['median']:.1f}")
    ax.axvline(row["stage2"]["median"], color="tab:orange", linestyle=":",
               label=f"stage-2 model median {row['stage2']['median']:.1f}")
    for key, colour, name in (("stage2", "tab:orange", "stage-2 model"), ("dataset", "tab:green", "dataset")):
        if row[key] is not None:
            ax.axvline(row[key]["best"], color=colour, linestyle="--",
                       label=f"{name} best of {row[key]['n']}: {row[key]['best']:.1f}")
    ax.set_title(f"{terrain}: {'beats' if row['beats'] else 'does not beat'} best-of-N")
    ax.set_xlabel("distance travelled (failures: 0)")
    ax.set_ylabel("programs")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


__all__ = ["TERRAIN_SETS", "Inventor", "Rollout", "Stage3Config", "TerrainReward", "evaluate_stage3", "format_table",
           "load_inventor", "new_inventor", "plot_rewards", "plot_terrain", "ppo_step", "sample_conditional",
           "train_stage3"]
