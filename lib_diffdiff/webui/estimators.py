"""The WebUI's own depth and segmentation estimators, for the depth and segmentation map sources. Duck-typed: the
estimators are ControlNet's preprocessors, found in the registry the host already filled (Forge, reForge and Forge
Neo: ``modules_forge.shared.supported_preprocessors``; A1111 with sd-webui-controlnet: its
``supported_preprocessor.Preprocessor.all_processors``, by the labels its UI shows). Nothing is imported from the
WebUI, and nothing is downloaded: while an estimator runs, the host's download functions refuse any file that is not
on disk, and the user is told which file the host would fetch, from where, into which folder."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

import numpy as np
from PIL import Image

from ..errors import ChangeMapError
from ..sources import EstimateCache

AUTO = "auto"
"""The ``source_estimator`` value that picks the best installed estimator of the source's kind."""

PREFERRED = {
    "depth": ("depth_anything_v2", "depth_anything", "depth_midas", "depth_zoe", "depth_leres++", "depth_leres"),
    "segmentation": ("seg_ofade20k", "seg_ufade20k", "seg_ofcoco", "seg_anime_face"),
}
"""What ``auto`` picks first, best first (the rest of a kind follow by name)."""

TAGS = {"depth": {"depth"}, "segmentation": {"segmentation", "seg"}}
"""The preprocessor tags (lower case) that make an estimator of each kind."""

INSTALL = (
    "On A1111 install the sd-webui-controlnet extension (Extensions > Available; "
    "https://github.com/Mikubill/sd-webui-controlnet): its {kind} preprocessors ({examples}) are the estimators. "
    "Forge, reForge and Forge Neo have them built in (extensions-builtin/forge_legacy_preprocessors, enabled)."
)

_CACHE = EstimateCache()
_LOCK = threading.Lock()  # one estimator at a time: the download guard rebinds module-level names


class EstimatorUnavailable(ChangeMapError):
    """An estimator that cannot run here (weights not on disk, its package not installed): ``auto`` tries the next."""


class WeightsMissing(Exception):
    """Raised inside an estimator, in place of a download."""

    def __init__(self, url: str, destination: str) -> None:
        super().__init__(url, destination)
        self.url = url
        self.destination = destination


def registries(modules: Mapping[str, Any] | None = None) -> list[Mapping[str, Any]]:
    """Every loaded preprocessor registry (name -> preprocessor)."""
    modules = sys.modules if modules is None else modules
    found: list[Mapping[str, Any]] = []
    forge = modules.get("modules_forge.shared")
    registry = getattr(forge, "supported_preprocessors", None)
    if isinstance(registry, Mapping):
        found.append(registry)
    for name, module in list(modules.items()):
        if not name.endswith("supported_preprocessor") or module is None:
            continue
        preprocessor = getattr(module, "Preprocessor", None)
        # by label: what ControlNet's dropdown and its API's "module" show (seg_anime_face, not anime_face_segment)
        registry = getattr(preprocessor, "all_processors", None)
        if not isinstance(registry, Mapping):
            registry = getattr(preprocessor, "all_processors_by_name", None)
        if isinstance(registry, Mapping) and all(registry is not r for r in found):
            found.append(registry)
    return found


def _tags(preprocessor: Any) -> set[str]:
    return {str(t).lower() for t in getattr(preprocessor, "tags", None) or ()}


def installed(kind: str, modules: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The installed estimators of ``kind`` ("depth" or "segmentation"), name -> preprocessor, ``auto``'s choice
    first."""
    found: dict[str, Any] = {}
    for registry in registries(modules):
        for name, preprocessor in list(registry.items()):
            if name not in found and _tags(preprocessor) & TAGS[kind] and callable(preprocessor):
                found[name] = preprocessor
    rank = {name: i for i, name in enumerate(PREFERRED[kind])}
    return dict(sorted(found.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0])))


def choose(kind: str, name: str, modules: Mapping[str, Any] | None = None) -> tuple[str, Any]:
    """The estimator ``name`` (or ``auto``'s) of ``kind``; a :class:`ChangeMapError` saying what to install or
    which names there are."""
    available = installed(kind, modules)
    if not available:
        examples = ", ".join(PREFERRED[kind][:3])
        raise ChangeMapError(
            f"map source {kind!r} needs a {kind} estimator, and this WebUI has none. "
            + INSTALL.format(kind=kind, examples=examples)
        )
    if name in ("", AUTO):
        return next(iter(available.items()))
    aliases = {getattr(p, "name", None): label for label, p in available.items()}  # A1111: internal names too
    name = name if name in available else aliases.get(name, name)
    if name not in available:
        raise ChangeMapError(
            f"{name!r} is not an installed {kind} estimator; installed: {', '.join(available)} (or {AUTO!r})"
        )
    return name, available[name]


def _default(parameter: Any) -> Any:
    """A preprocessor slider's default: A1111's PreprocessorParameter has ``value``, Forge's keeps it in
    ``gradio_update_kwargs``."""
    if parameter is None:
        return None
    value = getattr(parameter, "value", None)
    if value is None:
        value = (getattr(parameter, "gradio_update_kwargs", None) or {}).get("value")
    return value


def _destination(url: str, args: tuple, kwargs: dict) -> str:
    model_dir = kwargs.get("model_dir", args[0] if args else "")
    file_name = kwargs.get("file_name") or os.path.basename(urlparse(url).path)
    return os.path.abspath(os.path.join(model_dir or "", file_name))


def _guard_load(original: Callable) -> Callable:
    def load_file_from_url(url: str, *args: Any, **kwargs: Any) -> Any:
        destination = _destination(url, args, kwargs)
        if os.path.exists(destination) and not kwargs.get("re_download"):
            return original(url, *args, **kwargs)
        raise WeightsMissing(url, destination)

    return load_file_from_url


def _refuse_download(url: str, dst: str, *args: Any, **kwargs: Any) -> None:
    raise WeightsMissing(url, os.path.abspath(dst))


def _guard_hub(original: Callable) -> Callable:
    def hf_hub_download(repo_id: str, filename: str, *args: Any, **kwargs: Any) -> Any:
        kwargs["local_files_only"] = True
        try:
            return original(repo_id, filename, *args, **kwargs)
        except Exception as e:  # LocalEntryNotFoundError (and its relatives across huggingface_hub versions)
            where = kwargs.get("local_dir") or kwargs.get("cache_dir") or "the Hugging Face cache (HF_HOME)"
            raise WeightsMissing(f"https://huggingface.co/{repo_id}/resolve/main/{filename}", str(where)) from e

    return hf_hub_download


@contextmanager
def no_downloads(modules: Mapping[str, Any] | None = None) -> Iterator[None]:
    """While inside: the hosts' ``load_file_from_url`` (wherever a module bound it by name), ``torch.hub``'s
    ``download_url_to_file`` and huggingface_hub's ``hf_hub_download`` fetch nothing; a file that is not on disk
    raises :class:`WeightsMissing` instead. Everything is put back on the way out."""
    modules = sys.modules if modules is None else modules
    replacements: dict[int, Callable] = {}
    for name in ("modules.modelloader", "modules.util"):
        original = getattr(modules.get(name), "load_file_from_url", None)
        if callable(original):
            replacements[id(original)] = _guard_load(original)
    hub = getattr(modules.get("torch.hub"), "download_url_to_file", None)
    if callable(hub):
        replacements[id(hub)] = _refuse_download
    for name in ("huggingface_hub", "huggingface_hub.file_download"):
        original = getattr(modules.get(name), "hf_hub_download", None)
        if callable(original) and id(original) not in replacements:
            replacements[id(original)] = _guard_hub(original)
    patched: list[tuple[dict, str, Any]] = []
    try:
        for module in list(modules.values()):
            namespace = getattr(module, "__dict__", None)
            if not isinstance(namespace, dict):
                continue
            for attr in ("load_file_from_url", "download_url_to_file", "hf_hub_download"):
                value = namespace.get(attr)
                if value is not None and id(value) in replacements:
                    patched.append((namespace, attr, value))
                    namespace[attr] = replacements[id(value)]
        yield
    finally:
        for namespace, attr, value in reversed(patched):
            namespace[attr] = value


def _unload(preprocessor: Any) -> None:
    """As the host does after its own use: A1111's ControlNet unloads every preprocessor it did not just use after
    a generation (``Preprocessor.unload``); Forge's legacy preprocessors unload inside their own call, its others
    live in Forge's model management."""
    unload = getattr(preprocessor, "unload", None)
    if callable(unload):
        unload()


def run_estimator(name: str, preprocessor: Any, image: Image.Image) -> np.ndarray:
    """The preprocessor's raw output for ``image``, at its own default resolution and sliders, on the host's device,
    then unloaded; a missing weight file or a failure becomes a :class:`ChangeMapError`."""
    pixels = np.ascontiguousarray(np.asarray(image.convert("RGB")))
    resolution = int(_default(getattr(preprocessor, "slider_resolution", None)) or 512)
    sliders = {f"slider_{i}": _default(getattr(preprocessor, f"slider_{i}", None)) for i in (1, 2, 3)}
    with _LOCK:
        try:
            with no_downloads():
                out = preprocessor(pixels, resolution, **sliders)
        except WeightsMissing as e:
            folder, file_name = os.path.split(e.destination)
            raise EstimatorUnavailable(
                f"the estimator {name!r} needs {file_name or e.url}, which is not on disk, and this extension does "
                f"not download it. The WebUI would fetch {e.url} into {folder or e.destination}: run {name} once as "
                "a ControlNet preprocessor (its preview) to let the WebUI download it, or put the file there."
            ) from None
        except ChangeMapError:
            raise
        except ImportError as e:
            raise EstimatorUnavailable(
                f"the estimator {name!r} cannot be loaded: {e} (the WebUI installs its preprocessors' packages when it "
                "starts without --skip-install)"
            ) from e
        except Exception as e:
            raise ChangeMapError(f"the estimator {name!r} failed on this image: {type(e).__name__}: {e}") from e
        finally:
            _unload(preprocessor)
    out = getattr(out, "value", out)  # A1111's Preprocessor.Result
    if isinstance(out, tuple):
        out = out[0]
    return np.asarray(out)


def host_estimate(kind: str, name: str, modules: Mapping[str, Any] | None = None) -> Callable[[Image.Image], Any]:
    """The ``estimate`` a depth or segmentation source is made with: the chosen estimator, run once per image (the
    preview's polls and the run share it), its missing weights a clear error. ``auto`` takes the best estimator that
    can run here, passing over those whose weights are not on disk or whose package is missing."""
    chosen, preprocessor = choose(kind, name, modules)
    if name not in ("", AUTO):
        return lambda image: _CACHE.get(chosen, image, lambda im: run_estimator(chosen, preprocessor, im))
    candidates = installed(kind, modules)

    def best(image: Image.Image) -> np.ndarray:
        reasons = []
        for label, candidate in candidates.items():
            try:
                return run_estimator(label, candidate, image)
            except EstimatorUnavailable as e:
                reasons.append(str(e))
        raise EstimatorUnavailable(
            f"none of this WebUI's {kind} estimators can run ({', '.join(candidates)}); the first: {reasons[0]}"
        )

    return lambda image: _CACHE.get(f"{AUTO} {kind}", image, best)


def estimator_choices(source: str, modules: Mapping[str, Any] | None = None) -> list[str]:
    """What the panel's estimator dropdown offers for ``source``: ``auto``, then the installed estimators of its kind
    (both kinds for a source that uses none, so the list is never empty of names by accident)."""
    kinds = [source] if source in TAGS else list(TAGS)
    names = [name for kind in kinds for name in installed(kind, modules)]
    return [AUTO, *dict.fromkeys(names)]


def installed_estimators(modules: Mapping[str, Any] | None = None) -> dict[str, list[str]]:
    """``GET /diffdiff/v1/estimators``: per kind, the names ``source_estimator`` takes (``auto``'s choice first)."""
    return {kind: list(installed(kind, modules)) for kind in TAGS}
