"""Reads of the training app beyond a row: the replays of a stage-3 evaluation's walkers.

A stage-3 evaluation keeps, for each terrain and each source (the inventor, the stage-2
model, its dataset), the programs that walked farthest (``services.KEEP_PROGRAMS``). A replay
re-runs one of them on that terrain with a trace, the way the run pages replay an elite
(``elmweb.runs.engine.trace_bytes``): evaluation is deterministic, so the replay is the walk
the evaluation scored. It is computed on first request and then cached.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ValidationError

from elmweb.runs import engine
from elmweb.runs.services import Conflict
from elmweb.training.models import TrainedModel

SOURCES = ("conditional", "stage2", "dataset")
"""The inventor's programs, the stage-2 model's, the stage-2 dataset's."""
CACHE_S = 24 * 3600


def inventor_replay(*, model_id: int, terrain: str, source: str, rank: int = 0) -> dict[str, Any]:
    """The replay of the ``rank``-th farthest walker of ``source`` on ``terrain`` (trace JSON).

    Returns:
        The trace as the run pages' replays have it (``Trace.to_json_dict``), plus ``text``
        (the program) and ``distance`` (as evaluated).

    Raises:
        TrainedModel.DoesNotExist: Unknown model, no evaluation yet, or no such walker.
        ValidationError: Not a stage-3 model, or an unknown terrain or source.
        Conflict: The program no longer builds a walker (it did when it was evaluated).
    """
    job = TrainedModel.objects.get(pk=model_id)
    if job.stage != TrainedModel.Stage.INVENTOR:
        raise ValidationError({"__all__": [f"model {model_id} is a stage-2 model; replays per terrain belong to "
                                           "stage-3 inventors"]})
    if not job.evaluation:
        raise TrainedModel.DoesNotExist(f"model {model_id} has no evaluation yet (it is {job.status})")
    rows = job.evaluation["terrains"]
    if terrain not in rows:
        raise ValidationError({"terrain": [f"model {model_id} was evaluated on {', '.join(rows)}, not {terrain!r}"]})
    if source not in SOURCES:
        raise ValidationError({"source": [f"choose one of {', '.join(SOURCES)}, not {source!r}"]})
    programs = (rows[terrain][source] or {}).get("programs", [])
    if not 0 <= rank < len(programs):
        raise TrainedModel.DoesNotExist(f"model {model_id} kept {len(programs)} walking programs of {source} on "
                                        f"{terrain}; ask for rank 0 to {len(programs) - 1}" if programs else
                                        f"no program of {source} walked on {terrain}, so there is nothing to replay")
    program = programs[rank]
    settings = {"sim_seconds": job.sim_seconds} if job.sim_seconds else {}  # else the simulator's default, as evaluated
    digest = hashlib.sha256(program["text"].encode()).hexdigest()[:32]
    key = f"inventor-replay:{digest}:{terrain}:{job.sim_seconds}"
    data = cache.get(key)
    if data is None:
        config = engine.make_config(terrain=terrain, dims=engine.default_dims(), ranges=engine.default_ranges(), **settings)
        data = engine.trace_bytes(text=program["text"], preamble="", config=config)
        if data is None:
            raise Conflict(f"walker {rank} of {source} on {terrain} no longer builds (the sandbox or simulator "
                           "changed since the evaluation); evaluate the model again")
        cache.set(key, data, timeout=CACHE_S)
    return {**engine.trace_json(data), "text": program["text"], "distance": program["distance"]}
