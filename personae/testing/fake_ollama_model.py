"""What the fake Ollama does with a prompt, as Ollama does it (read from its source,
``server/prompt.go``, ``server/sched.go``, ``llm/llama_server.go`` and the older
``runner/ollamarunner``), with the tokens of :mod:`personae.testing.fake_tokenizer`.

- **The window.** A model runs with ``num_ctx`` tokens: the request's
  ``options.num_ctx``, else the model's own (its Modelfile's ``PARAMETER
  num_ctx``), else the server's default (4096 without a large GPU); never more than
  the model's trained ``context_length``, never less than 4 (:func:`effective_num_ctx`).
- **Truncation** (:func:`fit_prompt`). When the rendered messages exceed
  ``num_ctx``, Ollama's ``chatPrompt`` drops messages from the front, one at a time,
  keeping every system message and always the last message, until the rest fits.
  If even that does not fit (more than ``num_ctx - 1`` tokens), the runner keeps the
  first ``num_keep`` tokens (default 4, plus the BOS token), drops what follows so
  that about half the window stays free (``contextShiftPromptLimit``), and keeps the
  end. With ``"truncate": false`` nothing is cut and the request fails instead.
- **The KV prefix cache** (:class:`LoadedModel`). Each loaded model has
  ``num_parallel`` cache slots holding the tokens last evaluated (and generated) in
  them. A request takes the slot sharing the longest token prefix with it, if that
  is over a tenth of the prompt, else the least recently used slot (llama-server's
  ``get_available_slot``), and evaluates only what follows the common prefix; when
  the whole prompt is cached, its last token is evaluated again to sample from.
  (llama-server's RAM prompt cache, ``--cache-ram``, is not modelled.)
- **Loading** (:class:`ModelHost`). A model is loaded on first use, and reloaded,
  cache cold, when a request asks for another ``num_ctx``; at most
  ``max_loaded_models`` stay loaded (3, Ollama's default per GPU, or per CPU), the
  least recently used is unloaded first; ``keep_alive`` 0 unloads after the request.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from personae.testing.fake_tokenizer import BOS, chat_tokens, message_tokens, tokenize

DEFAULT_NUM_CTX = 4096
"""Ollama's default context without a large GPU (``OLLAMA_CONTEXT_LENGTH`` unset)."""
DEFAULT_NUM_KEEP = 4
"""``api.DefaultOptions().NumKeep``."""
MIN_NUM_CTX = 4
DEFAULT_MAX_LOADED_MODELS = 3
"""``defaultModelsPerGPU`` (a CPU-only host counts as one)."""
SLOT_PROMPT_SIMILARITY = 0.1
"""llama-server's ``--slot-prompt-similarity`` default."""
TOO_LONG = "the input length exceeds the context length"
"""Ollama's error when a prompt is too long and ``truncate`` is false."""

Message = Mapping[str, Any]


@dataclass(slots=True)
class ModelSpec:
    """How the fake presents one model: ``/api/show``'s ``model_info`` reports
    ``"<architecture>.context_length"``, and ``capabilities`` as given."""

    architecture: str = "llama"
    context_length: int = 131072
    capabilities: list[str] = field(default_factory=lambda: ["completion"])
    num_ctx: int | None = None
    """The model's own default ``num_ctx`` (a Modelfile ``PARAMETER num_ctx``)."""
    parameter_size: str = "3.2B"
    quantization_level: str = "Q4_K_M"
    size: int = 2019393189

    @classmethod
    def default_for(cls, name: str) -> ModelSpec:
        """Names containing "embed" look like nomic-embed-text, others like llama3.2."""
        if "embed" in name:
            return cls("nomic-bert", 2048, ["embedding"], None, "137M", "F16", 274302450)
        return cls()


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What the model did with one ``/api/chat`` or ``/api/generate`` request."""

    model: str
    num_ctx: int
    """The window the model ran with."""
    messages: list[dict[str, Any]]
    """The messages as sent."""
    seen_messages: list[dict[str, Any]]
    """The messages left after Ollama dropped the oldest non-system ones."""
    requested_tokens: int
    """Tokens of all the messages sent, rendered through the chat template."""
    tokens: tuple[str, ...]
    """The token sequence the model evaluated (after every truncation)."""
    cut_tokens: int
    """Tokens the runner cut after the first ``num_keep`` ones (0 if none)."""
    cached_tokens: int
    """Prompt tokens read from the KV cache instead of evaluated."""
    reloaded: bool
    """Whether this request (re)loaded the model, with a cold cache."""
    generated_tokens: int = 0
    done_reason: str | None = None

    @property
    def prompt_tokens(self) -> int:
        """Tokens in the prompt the model saw: what Ollama reports as ``prompt_eval_count``."""
        return len(self.tokens)

    @property
    def text(self) -> str:
        """The prompt the model saw, as text (template markers included)."""
        return "".join(self.tokens)

    @property
    def evaluated_tokens(self) -> int:
        """Prompt tokens actually evaluated (not served from the cache)."""
        return self.prompt_tokens - self.cached_tokens

    @property
    def dropped_messages(self) -> int:
        """How many of the sent messages the model never saw."""
        return len(self.messages) - len(self.seen_messages)

    @property
    def truncated(self) -> bool:
        """Whether the model saw less than was sent (messages dropped or tokens cut)."""
        return self.dropped_messages > 0 or self.cut_tokens > 0


@dataclass(frozen=True, slots=True)
class PromptFit:
    """The prompt a request's messages make once fitted into ``num_ctx``."""

    seen_messages: list[dict[str, Any]]
    requested_tokens: int
    tokens: list[str]
    cut_tokens: int


class PromptTooLong(ValueError):
    """The prompt exceeds ``num_ctx`` and the request said ``"truncate": false``."""


def effective_num_ctx(spec: ModelSpec, options: Mapping[str, Any], default: int) -> int:
    """The window a request runs with (see the module docstring)."""
    requested = options.get("num_ctx") or spec.num_ctx or default
    return max(MIN_NUM_CTX, min(int(requested), spec.context_length))


def _is_system(message: Message) -> bool:
    return message.get("role") == "system"


def fit_prompt(
    messages: Sequence[Message], num_ctx: int, *, num_keep: int, truncate: bool = True
) -> PromptFit:
    """Fit ``messages`` into ``num_ctx`` as Ollama does (see the module docstring)."""
    dicts = [dict(m) for m in messages]
    blocks = [message_tokens(m) for m in dicts]
    frame = len(chat_tokens([]))  # BOS and the assistant's header
    requested = frame + sum(len(b) for b in blocks)
    start = 0
    if truncate:  # server/prompt.go chatPrompt
        for start in range(len(dicts)):
            system = sum(len(blocks[i]) for i in range(start) if _is_system(dicts[i]))
            if frame + system + sum(map(len, blocks[start:])) <= num_ctx:
                break
    shown = [i for i in range(start) if _is_system(dicts[i])] + list(range(start, len(dicts)))
    seen = [dicts[i] for i in shown]
    head, *tail = chat_tokens([])
    tokens = [head, *(token for i in shown for token in blocks[i]), *tail]
    if len(tokens) <= num_ctx - 1:
        return PromptFit(seen, requested, tokens, 0)
    if not truncate:
        raise PromptTooLong(TOO_LONG)
    # llm/llama_server.go completionPromptForRequest: the tokenizer adds BOS
    keep = (len(tokens) if num_keep < 0 else num_keep) + (1 if tokens[0] == BOS else 0)
    keep = min(keep, num_ctx - 1)
    limit = num_ctx - max((num_ctx - keep) // 2, 1)
    discard = len(tokens) - limit
    return PromptFit(seen, requested, tokens[:keep] + tokens[keep + discard :], discard)


@dataclass(slots=True)
class CacheSlot:
    """One KV cache slot: the tokens it holds, prompt and generated."""

    id: int
    tokens: list[str] = field(default_factory=list)
    last_used: int = -1


def common_prefix(a: Sequence[str], b: Sequence[str]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    count = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        count += 1
    return count


@dataclass(slots=True)
class LoadedModel:
    """A model in memory: its window and its KV cache slots."""

    name: str
    num_ctx: int
    slots: list[CacheSlot]

    uses: int = 0

    def load_prompt(self, prompt: Sequence[str]) -> tuple[CacheSlot, int]:
        """Choose a slot as llama-server does (``get_available_slot``): the one
        sharing the longest prefix with ``prompt`` if that is over
        :data:`SLOT_PROMPT_SIMILARITY` of the prompt, else the least recently used;
        keep the common prefix and hold ``prompt`` in it. Returns the slot and the
        number of prompt tokens served from the cache."""
        shared = [common_prefix(s.tokens, prompt) for s in self.slots]
        best = max(range(len(self.slots)), key=lambda i: (shared[i], -i))
        if not prompt or shared[best] / len(prompt) <= SLOT_PROMPT_SIMILARITY:
            best = min(range(len(self.slots)), key=lambda i: (self.slots[i].last_used, i))
        slot, cached = self.slots[best], shared[best]
        if cached == len(prompt):
            cached -= 1  # leave one token to evaluate, to sample the reply from
        self.uses += 1
        slot.tokens, slot.last_used = list(prompt), self.uses
        return slot, max(cached, 0)


class ModelHost:
    """The models the fake holds in memory, least recently used first."""

    def __init__(self) -> None:
        self.loaded: OrderedDict[str, LoadedModel] = OrderedDict()

    def acquire(
        self, name: str, num_ctx: int, *, num_parallel: int, max_loaded: int
    ) -> tuple[LoadedModel, bool]:
        """The loaded model for ``name`` at ``num_ctx``, loading (or reloading) it
        if needed; returns it and whether it was (re)loaded."""
        current = self.loaded.get(name)
        if current is not None and current.num_ctx == num_ctx:
            if len(current.slots) == max(num_parallel, 1):
                self.loaded.move_to_end(name)
                return current, False
        self.loaded.pop(name, None)
        while self.loaded and len(self.loaded) >= max(max_loaded, 1):
            self.loaded.popitem(last=False)
        model = LoadedModel(name, num_ctx, [CacheSlot(i) for i in range(max(num_parallel, 1))])
        self.loaded[name] = model
        return model, True

    def unload(self, name: str | None = None) -> None:
        """Unload ``name``, or every model."""
        if name is None:
            self.loaded.clear()
        else:
            self.loaded.pop(name, None)


NOMINAL_SECONDS_PER_PROMPT_TOKEN = 1e-6
"""The prompt evaluation time reported per token when the fake is not told one."""
NOMINAL_SECONDS_PER_GENERATED_TOKEN = 1e-4
"""The generation time reported per token when the fake is not told one."""


def cut_reply(chunks: Sequence[str], num_predict: Any) -> tuple[list[str], list[str], str]:
    """The chunks a model streams for a scripted reply, its tokens and its
    ``done_reason``: with ``options.num_predict`` > 0 the reply stops after that
    many tokens (``"length"``), else it is whole (``"stop"``)."""
    tokens = tokenize("".join(chunks))
    limit = int(num_predict) if isinstance(num_predict, int | float) else -1
    if limit <= 0 or len(tokens) <= limit:
        return list(chunks), tokens, "stop"
    room, cut = len("".join(tokens[:limit])), []
    for chunk in chunks:
        if room <= 0:
            break
        cut.append(chunk[:room])
        room -= len(chunk)
    return cut, tokens[:limit], "length"


def unloads(keep_alive: Any) -> bool:
    """Whether ``keep_alive`` asks to unload the model after the request (0, "0s"...)."""
    if isinstance(keep_alive, bool):
        return False
    if isinstance(keep_alive, int | float):
        return keep_alive == 0
    return isinstance(keep_alive, str) and bool(re.fullmatch(r"0+(\.0*)?[a-zµ]*", keep_alive))
