"""Model providers behind one interface: `generate(request) -> Generation`."""

from shared.providers.base import Generation, GuardrailBlocked, ModelCallError, Provider
from shared.providers.chart import ChartProvider
from shared.providers.image import InvokeImageProvider
from shared.providers.text import ConverseTextProvider

__all__ = [
    "ChartProvider",
    "ConverseTextProvider",
    "Generation",
    "GuardrailBlocked",
    "InvokeImageProvider",
    "ModelCallError",
    "Provider",
]
