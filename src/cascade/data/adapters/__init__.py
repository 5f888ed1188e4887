"""Adapters from published dataset layouts to cascade records (docs/adapters.md). Torch-free.

``ADAPTERS[name].convert(row, place, kind)`` turns one raw row into a record dict;
``detect_format(row)`` names a row's layout when it is unambiguous; ``adapt_rows`` runs a
whole source through one adapter. ``decode_lcb_private_tests`` reads LiveCodeBench's
hidden tests without executing their pickle.
"""

from cascade.data.adapters.base import Adapter, AdapterRowError
from cascade.data.adapters.lcb_tests import decode_lcb_private_tests
from cascade.data.adapters.registry import ADAPTERS, adapt_rows, detect_format, get_adapter, matching_formats

__all__ = [
    "ADAPTERS",
    "Adapter",
    "AdapterRowError",
    "adapt_rows",
    "decode_lcb_private_tests",
    "detect_format",
    "get_adapter",
    "matching_formats",
]
