"""Model providers behind one interface: `generate(request) -> Generation`."""

from shared.providers.base import Generation, ModelCallError, Provider
from shared.providers.text import ConverseTextProvider

__all__ = ["ConverseTextProvider", "Generation", "ModelCallError", "Provider"]
