"""``Backend``: what a language-model operator needs from a model, and helpers all backends share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

Message = dict[str, str]
"""One chat message: ``{"role": "system" | "user" | "assistant", "content": text}``."""

MODES = ("completions", "chat")
"""How an operator should talk to a backend: continue a prompt, or answer chat messages."""


class BackendError(RuntimeError):
    """A model call failed (server unreachable, HTTP error, timeout, bad response)."""


@runtime_checkable
class Backend(Protocol):
    """A language model that continues prompts, in batches.

    Attributes:
        mode: ``"completions"`` or ``"chat"``: which of ``generate`` and ``chat`` the model is
            meant for; an operator that can use either (rewrite) follows it.
    """

    mode: str

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        stop: Sequence[str],
        seed: int | None,
    ) -> list[str]:
        """Continue each prompt.

        Args:
            prompts: ``(B,)`` prompt texts.
            max_new_tokens: Most tokens generated per prompt.
            temperature: Sampling temperature; 0 means greedy decoding.
            top_p: Nucleus sampling mass in (0, 1].
            stop: Each completion is cut before the first of these strings (and at the model's
                end-of-text token).
            seed: Seed of the sampling randomness, where the backend supports one.

        Returns:
            ``(B,)`` completions, without the prompts.

        Raises:
            BackendError: If the model call fails.
        """
        ...

    def chat(
        self,
        conversations: Sequence[Sequence[Message]],
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        stop: Sequence[str],
        seed: int | None,
    ) -> list[str]:
        """Answer each conversation (a list of messages) with the assistant's next message.

        Args and Raises as ``generate``; returns ``(B,)`` answers.
        """
        ...


def check_sampling(*, max_new_tokens: int, temperature: float, top_p: float) -> None:
    """Validate sampling arguments.

    Raises:
        ValueError: If ``max_new_tokens < 1``, ``temperature < 0`` or ``top_p`` is outside (0, 1].
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens!r}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 is greedy), got {temperature!r}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to (not including) the earliest occurrence of any of ``stop``."""
    cut = len(text)
    for marker in stop:
        if marker:
            at = text.find(marker)
            if at != -1:
                cut = min(cut, at)
    return text[:cut]


def chat_prompt(tokenizer: Any, messages: Sequence[Message]) -> str:
    """The prompt text for ``messages``: the tokenizer's chat template when it has one, else
    ``"role: content"`` lines followed by ``"assistant:"``.

    Raises:
        ValueError: If a message is not a ``{"role": str, "content": str}`` mapping.
    """
    for message in messages:
        if not (
            isinstance(message, dict)
            and isinstance(message.get("role"), str)
            and isinstance(message.get("content"), str)
        ):
            raise ValueError(f"each message must be {{'role': str, 'content': str}}, got {message!r}")
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    lines = [f"{m['role']}: {m['content']}" for m in messages]
    return "\n".join([*lines, "assistant:"])
