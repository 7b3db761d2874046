"""The local detector: pure Python, no Django. See client.LocalRekognition."""

from .client import LocalRekognition
from .runtime import ModelError

__all__ = ["LocalRekognition", "ModelError"]
