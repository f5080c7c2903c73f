"""Lazily decoded dataset images: a PIL image whose pixels are read from disk when first used.

A loader that decoded every image up front would hold the whole benchmark in memory (JailBreakV-28K's full split
is 28,000 images). :class:`LazyImage` is a real ``PIL.Image.Image`` (``isinstance`` checks in processors pass)
whose size and mode come from the file header at load time; its pixel data live in one process-wide cache of
bounded size (:data:`CACHE_ITEMS` images, :data:`CACHE_BYTES` bytes), evicted least-recently-used, and are
decoded again from the file after eviction. Peak memory therefore depends on the batch, not on the dataset.

Every operation that creates a new image (``copy``, ``convert``, ``resize``, ``crop``) returns an ordinary,
fully loaded image; an in-place operation (``paste``, ``putpixel``) pins the pixels to that object, so a mutated
image never silently reverts. The file is decoded as RGB, as :func:`baselines.imaging.load_image` does; a file
changed on disk after loading is caught when it is decoded again (size check), and a file that decodes at load
time but not later raises :class:`~baselines.imaging.ImageLoadError` naming it.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from baselines.imaging import ImageLoadError, load_image

#: Most decoded images kept at once (process-wide), and most bytes of decoded pixels.
CACHE_ITEMS = 128
CACHE_BYTES = 512 * 1024 * 1024

_lock = threading.Lock()
_cache: OrderedDict[int, tuple[Any, int]] = OrderedDict()  # key -> (ImagingCore, n bytes)
_bytes = 0
_keys = itertools.count()
_decodes = 0  # how many times a file was decoded (tests and the memory benchmark read it)


def cache_stats() -> dict[str, int]:
    """Decoded images held now, their bytes, and how many decodes happened so far."""
    with _lock:
        return {"items": len(_cache), "bytes": _bytes, "decodes": _decodes}


def clear_cache() -> None:
    """Drop every cached decoded image (they are decoded again when used)."""
    global _bytes
    with _lock:
        _cache.clear()
        _bytes = 0


def _put(key: int, core: Any, size: tuple[int, int]) -> None:
    global _bytes
    n = size[0] * size[1] * 3
    with _lock:
        if key in _cache:
            _bytes -= _cache.pop(key)[1]
        _cache[key] = (core, n)
        _bytes += n
        while _cache and (len(_cache) > CACHE_ITEMS or _bytes > CACHE_BYTES) and len(_cache) > 1:
            _, (_, old) = _cache.popitem(last=False)
            _bytes -= old


def _get(key: int) -> Any:
    with _lock:
        hit = _cache.get(key)
        if hit is None:
            return None
        _cache.move_to_end(key)
        return hit[0]


class LazyImage(Image.Image):
    """An RGB image read from ``path`` when its pixels are first needed (see the module docstring)."""

    def __init__(self, path: str | Path, size: tuple[int, int], max_height: int | None = None) -> None:
        self.__dict__["_pinned"] = None
        self.__dict__["max_height"] = max_height
        self.__dict__["_key"] = next(_keys)
        self.__dict__["path"] = Path(path)
        super().__init__()
        self._mode = "RGB"
        self._size = fitted(tuple(size), max_height)

    @property  # type: ignore[override]
    def _im(self) -> Any:  # noqa: D401 - PIL's pixel storage, decoded on demand
        pinned = self.__dict__.get("_pinned")
        if pinned is not None:
            return pinned
        if "_key" not in self.__dict__:
            return None
        core = _get(self._key)
        if core is None:
            core = self._decode()
            _put(self._key, core, self._size)
        return core

    @_im.setter
    def _im(self, value: Any) -> None:
        # PIL sets _im = None in __init__ (ignored: pixels come from the file); any other value (an in-place
        # operation's result) is pinned to this object.
        if value is not None:
            self.__dict__["_pinned"] = value

    def _decode(self) -> Any:
        global _decodes
        image = load_image(self.path)
        if self.max_height and image.height > self.max_height:
            image = image.resize(fitted(image.size, self.max_height), Image.Resampling.LANCZOS)
        if image.size != self._size:
            raise ImageLoadError(
                f"image changed on disk since the dataset was loaded: {self.path} "
                f"(was {self._size[0]}x{self._size[1]}, now {image.size[0]}x{image.size[1]})"
            )
        with _lock:
            _decodes += 1
        return image.im

    def __repr__(self) -> str:
        return f"<LazyImage {self.path} {self._size[0]}x{self._size[1]} RGB>"

    def __reduce__(self) -> Any:
        return (_rebuild, (str(self.path), self._size, self.max_height))


def fitted(size: tuple[int, int], max_height: int | None) -> tuple[int, int]:
    """``size`` scaled down (aspect kept) so that its height is at most ``max_height``."""
    w, h = size
    if not max_height or h <= max_height:
        return (w, h)
    return (max(1, round(w * max_height / h)), max_height)


def _rebuild(path: str, size: tuple[int, int], max_height: int | None) -> LazyImage:
    image = LazyImage(path, size)
    image.__dict__["max_height"] = max_height
    return image


def lazy_image(path: str | Path, *, max_height: int | None = None) -> LazyImage:
    """A :class:`LazyImage` of ``path`` after reading its header (size, format); a missing file or one PIL cannot
    identify raises :class:`~baselines.imaging.ImageLoadError` naming the path. ``max_height``: images taller
    than this are scaled down to it (aspect kept, Lanczos) when decoded."""
    p = Path(path)
    if not p.is_file():
        raise ImageLoadError(f"image not found: {p}")
    try:
        with Image.open(p) as im:
            size = im.size
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ImageLoadError(f"cannot decode image {p}: {e}") from None
    return LazyImage(p, size, max_height)
