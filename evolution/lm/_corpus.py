"""Mutation corpora: (parent, message, diff) examples drawn from stage-1 run directories."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from evolution.mutation._diff import unified_diff
from evolution.mutation._prompts import DIFF_MESSAGES, messages_for

log = logging.getLogger(__name__)

_GP_KIND = re.compile(r"^(perturb literal|duplicate statement|delete statement|change loop bound|swap muscle ends|add muscle)")


@dataclass(frozen=True, slots=True)
class MutationExample:
    """One training example of the diff format.

    Attributes:
        parent: The parent program text.
        message: The commit message (one of ``DIFF_MESSAGES``).
        diff: Unified diff from the parent to the child.
        source: Where it came from, e.g. ``"square:gp"``.
        preamble: Fixed code the run put before every program (a CPPN seed's ``query_cppn``);
            not part of the diff format, but needed to run the parent or a child.
    """

    parent: str
    message: str
    diff: str
    source: str = ""
    preamble: str = ""


def gp_message(gp_message_text: str) -> str:
    """The diff-format commit message for a GP child, from the GP operator's own message.

    Raises:
        ValueError: If the text names no known GP edit (the GP operator's format changed).
    """
    kinds = [_kind(part) for part in gp_message_text.split("; ") if part]
    if not kinds:
        raise ValueError(f"no GP edit named in {gp_message_text!r}; update evolution.lm._corpus._GP_KIND")
    return messages_for(kinds)


def _kind(part: str) -> str:
    match = _GP_KIND.match(part)
    if match is None:
        raise ValueError(f"unknown GP edit {part!r}; update evolution.lm._corpus._GP_KIND")
    return match.group(1).replace(" ", "_")


def run_examples(run_dir: Path, *, context: int = 1, accepted_only: bool = False) -> Iterator[MutationExample]:
    """Examples from one run directory: every child that built a valid walker and changed the text.

    Args:
        run_dir: A stage-1 run directory (its ``genomes.jsonl``).
        context: Unchanged lines around each change in the re-made diff.
        accepted_only: Keep only children that entered the archive (new cell or improved),
            the paper's fine-tuning set.

    Raises:
        FileNotFoundError: If ``run_dir`` has no ``genomes.jsonl``.
    """
    path = Path(run_dir) / "genomes.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; pass a run directory made by 'python -m evolution run'")
    texts: dict[int, str] = {}
    name = Path(run_dir).name
    state = Path(run_dir) / "state.json"
    preamble = json.loads(state.read_text()).get("preamble", "") if state.exists() else ""
    with path.open() as lines:
        for line in lines:
            record = json.loads(line)
            texts[record["id"]] = record["text"]
            parent = texts.get(record["parent_id"]) if record["parent_id"] is not None else None
            if parent is None or record["failure"] or record["text"] == parent:
                continue
            if accepted_only and record["outcome"] not in ("new_cell", "improved"):
                continue
            message = _message_of(record)
            yield MutationExample(parent, message, unified_diff(parent, record["text"], context=context), f"{name}:{record['operator']}", preamble)


def _message_of(record: dict) -> str:
    if record["operator"] == "gp":
        return gp_message(record["message"])
    return record["message"] if record["message"] in DIFF_MESSAGES else DIFF_MESSAGES[0]


def build_corpus(run_dirs: Iterable[Path], *, context: int = 1, accepted_only: bool = False) -> list[MutationExample]:
    """Deduplicated examples (same parent and same diff kept once) from several runs, in order."""
    seen: set[tuple[str, str]] = set()
    corpus: list[MutationExample] = []
    for run_dir in run_dirs:
        before = len(corpus)
        for example in run_examples(run_dir, context=context, accepted_only=accepted_only):
            key = (example.parent, example.diff)
            if key not in seen:
                seen.add(key)
                corpus.append(example)
        log.info("%s: %d examples", run_dir, len(corpus) - before)
    return corpus


def write_corpus(corpus: Iterable[MutationExample], path: Path) -> int:
    """Write examples as JSON lines; returns how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w") as f:
        for example in corpus:
            f.write(json.dumps(asdict(example)) + "\n")
            count += 1
    return count


def read_corpus(path: Path) -> list[MutationExample]:
    """Examples written by ``write_corpus``."""
    with Path(path).open() as f:
        return [MutationExample(**json.loads(line)) for line in f]
