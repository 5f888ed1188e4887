"""Engines: the seam (``base``) and the local torch engine (``local``, ``sampling``,
``optim``), plus crash-safe checkpoints (``checkpoint``).

Deliberately empty of imports: torch-free modules import ``cascade.engine.base``, and
anything re-exported here would load torch for them.
"""
