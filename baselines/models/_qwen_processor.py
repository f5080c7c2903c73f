"""An image-only Qwen2-VL processor (no video processor, hence no torchvision).

The stock ``Qwen2VLProcessor`` cannot be built without torchvision (its video processor needs it), and
``AutoProcessor.from_pretrained`` on a folder saved by this class returns only the tokenizer. The hf
back-end therefore loads Qwen2-VL folders with :func:`load_qwen2vl_processor` when AutoProcessor gives
back a bare tokenizer. This module imports transformers at the top: import it lazily.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers.models.qwen2_vl.processing_qwen2_vl import Qwen2VLProcessor
from transformers.processing_utils import ProcessorMixin


class Qwen2VLImageOnlyProcessor(Qwen2VLProcessor):
    """``Qwen2VLProcessor`` with the image processor and the tokenizer only (images, no videos)."""

    def __init__(
        self, image_processor: Any = None, tokenizer: Any = None, chat_template: Any = None, **kwargs
    ):
        self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
        self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)


def load_qwen2vl_processor(path: str | Path, **kwargs: Any) -> Qwen2VLImageOnlyProcessor:
    """Load the image-only Qwen2-VL processor from a saved folder (or hub id, with ``kwargs``)."""
    return Qwen2VLImageOnlyProcessor.from_pretrained(str(path), **kwargs)
