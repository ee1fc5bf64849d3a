"""The models this server offers and whether each is ready.

Models are discovered at start (the built-in CPPN plus every SD-Turbo directory under the model
directory) and loaded in a background thread. A model that fails to load is reported — ready false
with the reason in ListModels, NOT_SERVING in health — while the others serve.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common.logging import get_logger
from inference import metrics
from inference.cppn_model import CPPN_NAME, CppnModel
from inference.errors import InvalidRequest, ModelLoadError, ModelNotReady
from inference.model import Model
from inference.runtime import RuntimeConfig
from inference.safety import SafetyChecker
from inference.sd_layout import find_model_dirs, read_meta
from inference.sd_turbo import SdTurboModel

__all__ = ["ModelEntry", "ModelRegistry"]

log = get_logger(__name__)
LOADING, READY, FAILED = "loading", "ready", "failed"


@dataclass
class ModelEntry:
    name: str
    kind: str
    source: Path | None  # None for the built-in model
    state: str = LOADING
    error: str = ""
    model: Model | None = None

    @property
    def ready(self) -> bool:
        return self.state == READY


class ModelRegistry:
    def __init__(self, config: RuntimeConfig, *, default_model: str = CPPN_NAME, model_dir: Path | None = None,
                 max_batch: int = 8, safety_checker: Path | None = None, safety_threshold: float = 0.5) -> None:
        self.config = config
        self.default_model = default_model
        self.max_batch = max_batch
        self.safety_path = safety_checker
        self.safety_threshold = safety_threshold
        self.safety: SafetyChecker | None = None
        self.safety_error = ""
        self._lock = threading.Lock()
        self.entries: dict[str, ModelEntry] = {CPPN_NAME: ModelEntry(CPPN_NAME, "cppn", None)}
        self._discover(model_dir)

    def _discover(self, model_dir: Path | None) -> None:
        if model_dir is None:
            return
        try:
            dirs = find_model_dirs(model_dir)
        except ModelLoadError as exc:
            log.error("model_dir_unusable", error=str(exc))
            return
        for path in dirs:
            try:
                name = read_meta(path).name
            except ModelLoadError:
                name = path.name  # loading will fail and report why
            entry = ModelEntry(name, "sd-turbo", path)
            if name in self.entries:
                entry.state, entry.error = FAILED, f"another model is already named {name!r}"
                name = f"{name}@{path}"
                entry.name = name
            self.entries[name] = entry

    def names(self) -> list[str]:
        return list(self.entries)

    def entry(self, name: str) -> ModelEntry:
        """The entry for ``name`` ("" = the default); InvalidRequest for an unknown name."""
        name = name or self.default_model
        entry = self.entries.get(name)
        if entry is None:
            raise InvalidRequest(f"unknown model {name!r}; available: {', '.join(self.entries)}")
        return entry

    def ready_model(self, name: str) -> Model:
        entry = self.entry(name)
        if entry.model is None or not entry.ready:
            reason = entry.error or "it is still loading"
            raise ModelNotReady(f"model {entry.name!r} is not ready: {reason}")
        return entry.model

    def install(self, model: Model) -> ModelEntry:
        """Add (or replace) a model that is already loaded; it is ready at once."""
        entry = ModelEntry(model.name, model.kind, None, READY, "", model)
        with self._lock:
            self.entries[model.name] = entry
        metrics.PROVIDER.labels(model.name, model.provider).set(1)
        metrics.MODEL_READY.labels(model.name).set(1)
        return entry

    def _load_safety(self) -> None:
        if self.safety_path is None:
            return
        try:
            self.safety = SafetyChecker(self.safety_path, self.config, threshold=self.safety_threshold)
        except ModelLoadError as exc:
            # Fail closed: with a checker configured but broken, no image may go out unchecked.
            self.safety_error = f"safety checker unusable: {exc}"
            log.error("safety_checker_failed", error=str(exc))

    def _load_one(self, entry: ModelEntry) -> Model:
        if entry.source is None:
            return CppnModel(self.config, name=entry.name, max_batch=self.max_batch)
        model = SdTurboModel(entry.source, self.config, max_batch=self.max_batch)
        if model.name != entry.name:  # model.json may rename it; the directory name is what clients use
            model.name = entry.name
        return model

    def load_all(self, on_change: Callable[[ModelEntry], None] = lambda _: None) -> None:
        """Load every model (blocking; run in a thread). ``on_change`` runs after each entry settles."""
        self._load_safety()
        for entry in list(self.entries.values()):
            if entry.state != LOADING:  # settled before (a duplicate name, or loaded by the caller)
                metrics.MODEL_READY.labels(entry.name).set(1 if entry.ready else 0)
                on_change(entry)
                continue
            try:
                if self.safety_error:
                    raise ModelLoadError(self.safety_error)
                model = self._load_one(entry)
            except ModelLoadError as exc:
                entry.state, entry.error = FAILED, str(exc)
                log.error("model_failed", model=entry.name, error=str(exc))
            except Exception as exc:  # a model must never take the process down
                entry.state, entry.error = FAILED, f"{type(exc).__name__}: {str(exc)[:300]}"
                log.exception("model_failed", model=entry.name)
            else:
                with self._lock:
                    entry.model, entry.state, entry.error = model, READY, ""
                metrics.PROVIDER.labels(entry.name, model.provider).set(1)
                log.info("model_ready", model=entry.name, kind=entry.kind, provider=model.provider)
            metrics.MODEL_READY.labels(entry.name).set(1 if entry.ready else 0)
            on_change(entry)
