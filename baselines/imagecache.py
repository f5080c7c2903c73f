"""Images sent to an endpoint, encoded once per distinct image: PNG + base64 data URLs cached by content.

An endpoint back-end sends an image as a ``data:image/png;base64,...`` URL. Encoding a 760x760 FigStep image
with PIL's default settings costs ~20 ms of CPU, more than rendering it; the same image is often sent more than
once (a defense that asks twice, a judge that sees the image, a condition that renders the same image again, a
retried sample). :func:`data_url` keys a bounded LRU cache by the image's content hash (mode, size, pixels:
``baselines.types.image_sha256``, ~2 ms), so each distinct image is encoded once per process, whatever object
carries it (an image changed in place gets a new hash, never a stale URL). A caller that has already hashed an
image (the harness, for its records) hands the hash over with :meth:`DataURLCache.remember`, so it is computed once.

PNG is lossless at every compression level; level 1 (:data:`PNG_COMPRESS_LEVEL`) encodes ~1.7x faster than
PIL's default 6 for ~20% more bytes on typographic images. The endpoint decodes the same pixels either way.
"""

from __future__ import annotations

import base64
import io
import threading
import weakref
from collections import OrderedDict
from typing import Any

from baselines.types import image_sha256

PNG_COMPRESS_LEVEL = 1
#: Most characters of data URLs kept (LRU beyond it): ~64 MB.
CACHE_CHARS = 64 * 1024 * 1024


class DataURLCache:
    """A thread-safe LRU of data URLs by image content hash, bounded by total characters."""

    def __init__(self, max_chars: int = CACHE_CHARS) -> None:
        self.max_chars = max_chars
        self.urls: OrderedDict[str, str] = OrderedDict()
        self.chars = 0
        self.hits = 0
        self.encoded = 0
        self.lock = threading.Lock()
        self.known: dict[int, tuple[weakref.ref, str]] = {}  # id(image) -> (weak reference, content hash)

    def remember(self, image: Any, sha256: str) -> None:
        """Record the content hash a caller already computed for ``image`` (the harness hashes every image for
        its records), so :meth:`get` does not hash it again. Kept while the image object lives; the caller must
        not change the image in place afterwards."""
        k = id(image)
        ref = weakref.ref(image, lambda _r: self.known.pop(k, None))
        with self.lock:
            self.known[k] = (ref, sha256)

    def key(self, image: Any) -> str:
        """The image's content hash: remembered for this object, else computed."""
        with self.lock:
            known = self.known.get(id(image))
        if known is not None and known[0]() is image:
            return known[1]
        return image_sha256(image)

    def get(self, image: Any) -> str:
        """The image's PNG data URL (RGB), encoded on the first request for its content."""
        key = self.key(image)
        with self.lock:
            url = self.urls.get(key)
            if url is not None:
                self.urls.move_to_end(key)
                self.hits += 1
                return url
        url = encode(image)
        with self.lock:
            self.encoded += 1
            if key not in self.urls and len(url) <= self.max_chars:
                self.urls[key] = url
                self.chars += len(url)
                while self.chars > self.max_chars:
                    _, old = self.urls.popitem(last=False)
                    self.chars -= len(old)
        return url

    def clear(self) -> None:
        """Forget every cached URL and reset the counters."""
        with self.lock:
            self.urls.clear()
            self.chars = self.hits = self.encoded = 0


def encode(image: Any) -> str:
    """``data:image/png;base64,...`` of the image converted to RGB (lossless PNG, fast compression level).

    An RGB image whose three channels are equal (typography: black text on white) is written as a grayscale
    PNG: the same pixels once the endpoint converts it to RGB, as vision models' processors do, for about half
    the encoding time and ~40% fewer bytes (a 760x760 FigStep image: 17.5 -> 8.0 ms, 43 -> 25 kB)."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    r, g, b = rgb.split()
    plain = r if r.tobytes() == g.tobytes() == b.tobytes() else rgb
    buf = io.BytesIO()
    plain.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


#: The process-wide cache the openai back-end uses.
CACHE = DataURLCache()


def data_url(image: Any) -> str:
    """The image as a PNG data URL, encoded once per distinct image content in this process."""
    return CACHE.get(image)
