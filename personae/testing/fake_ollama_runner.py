"""The model side of the fake Ollama: the models it has, how each presents itself
(:class:`~personae.testing.fake_ollama_model.ModelSpec`), which are loaded, and what
a model does with a prompt: fit it into its window, read what it can from its KV
cache, take the time the tokens take, and report Ollama's figures.
:class:`~personae.testing.fake_ollama.FakeOllama` inherits all of it."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from personae.testing.fake_ollama_model import (
    DEFAULT_MAX_LOADED_MODELS,
    DEFAULT_NUM_CTX,
    DEFAULT_NUM_KEEP,
    NOMINAL_SECONDS_PER_GENERATED_TOKEN,
    NOMINAL_SECONDS_PER_PROMPT_TOKEN,
    CacheSlot,
    Evaluation,
    LoadedModel,
    ModelHost,
    ModelSpec,
    effective_num_ctx,
    fit_prompt,
)
from personae.testing.fake_ollama_records import (
    FakeChatRequest,
    RecordedRequest,
    normalize_model_name,
)


class ModelRunner:
    """The fake's models; the attributes tests may set are listed in
    :class:`~personae.testing.fake_ollama.FakeOllama`."""

    def init_models(self, models: Sequence[str]) -> None:
        self.models: list[str] = list(models)
        self.specs: dict[str, ModelSpec] = {}
        self.default_num_ctx = DEFAULT_NUM_CTX
        self.max_loaded_models = DEFAULT_MAX_LOADED_MODELS
        self.num_parallel = 1
        self.load_seconds = 0.0
        self.seconds_per_prompt_token = 0.0
        self.seconds_per_generated_token = 0.0
        self.host = ModelHost()

    def spec(self, name: str) -> ModelSpec:
        """How model ``name`` is presented (see :meth:`configure_model`)."""
        full = normalize_model_name(name)
        return self.specs.get(full) or ModelSpec.default_for(full)

    def configure_model(self, name: str, **changes: Any) -> ModelSpec:
        """Set :class:`ModelSpec` fields of model ``name`` (``context_length``,
        ``capabilities``, ``num_ctx``, ``architecture``...) and install it."""
        full = normalize_model_name(name)
        self.specs[full] = replace(self.spec(full), **changes)
        if not self.has_model(full):
            self.models.append(full)
        return self.specs[full]

    @property
    def loaded_models(self) -> dict[str, LoadedModel]:
        """The models in memory by name, least recently used first, with their
        ``num_ctx`` and KV cache ``slots``."""
        return dict(self.host.loaded)

    def unload(self, name: str | None = None) -> None:
        """Unload model ``name`` (or all): its next request loads it, cache cold."""
        self.host.unload(None if name is None else normalize_model_name(name))

    def _load(self, name: str, options: dict[str, Any]) -> tuple[LoadedModel, bool]:
        full = normalize_model_name(name)
        num_ctx = effective_num_ctx(self.spec(full), options, self.default_num_ctx)
        return self.host.acquire(
            full, num_ctx, num_parallel=self.num_parallel, max_loaded=self.max_loaded_models
        )

    def has_model(self, name: str) -> bool:
        """Whether ``name`` is installed (``x`` and ``x:latest`` are the same model)."""
        wanted = normalize_model_name(name)
        return any(normalize_model_name(m) == wanted for m in self.models)

    def _model_entry(self, name: str) -> dict[str, Any]:
        """One model as ``/api/tags`` lists it."""
        full, spec = normalize_model_name(name), self.spec(name)
        family = spec.architecture
        details = {"parent_model": "", "format": "gguf", "family": family, "families": [family]}
        details |= {"parameter_size": spec.parameter_size}
        details |= {"quantization_level": spec.quantization_level}
        digest = hashlib.sha256(full.encode()).hexdigest()
        entry = {"name": full, "model": full, "modified_at": "2025-01-01T00:00:00Z"}
        return entry | {"size": spec.size, "digest": digest, "details": details}

    async def _evaluate(
        self, record: RecordedRequest, chat: FakeChatRequest, truncate: bool
    ) -> tuple[Evaluation, CacheSlot]:
        """Load the model if needed, fit the prompt into its window, and evaluate
        what its KV cache does not hold; records the :class:`Evaluation`."""
        loaded, reloaded = self._load(chat.model, chat.options)
        if reloaded and self.load_seconds:
            await asyncio.sleep(self.load_seconds)
        num_keep = int(chat.options.get("num_keep", DEFAULT_NUM_KEEP))
        fit = fit_prompt(chat.messages, loaded.num_ctx, num_keep=num_keep, truncate=truncate)
        slot, cached = loaded.load_prompt(fit.tokens)
        record.evaluation = Evaluation(
            model=chat.model,
            num_ctx=loaded.num_ctx,
            messages=list(chat.messages),
            seen_messages=fit.seen_messages,
            requested_tokens=fit.requested_tokens,
            tokens=tuple(fit.tokens),
            cut_tokens=fit.cut_tokens,
            cached_tokens=cached,
            reloaded=reloaded,
        )
        if self.seconds_per_prompt_token:
            await asyncio.sleep(record.evaluation.evaluated_tokens * self.seconds_per_prompt_token)
        return record.evaluation, slot

    async def _generate(self, tokens: int) -> None:
        """Take the time ``tokens`` generated tokens take (``seconds_per_generated_token``)."""
        if self.seconds_per_generated_token and tokens:
            await asyncio.sleep(tokens * self.seconds_per_generated_token)

    def _stats(self, evaluation: Evaluation) -> dict[str, Any]:
        """The final line's fields; like Ollama's, zero figures are left out."""
        load = round(1e9 * self.load_seconds) + 1_000_000 if evaluation.reloaded else 100_000
        per_prompt = self.seconds_per_prompt_token or NOMINAL_SECONDS_PER_PROMPT_TOKEN
        per_token = self.seconds_per_generated_token or NOMINAL_SECONDS_PER_GENERATED_TOKEN
        prompt = round(1e9 * evaluation.evaluated_tokens * per_prompt)
        generation = round(1e9 * evaluation.generated_tokens * per_token)
        metrics = {"total_duration": load + prompt + generation + 100_000, "load_duration": load}
        metrics |= {"prompt_eval_count": evaluation.prompt_tokens, "prompt_eval_duration": prompt}
        metrics |= {"eval_count": evaluation.generated_tokens, "eval_duration": generation}
        done = {"done": True, "done_reason": evaluation.done_reason}
        return done | {key: value for key, value in metrics.items() if value}
