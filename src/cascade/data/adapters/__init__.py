"""Adapters from published dataset layouts to cascade records (docs/adapters.md). Torch-free."""

from cascade.data.adapters.lcb_tests import decode_lcb_private_tests

__all__ = ["decode_lcb_private_tests"]
