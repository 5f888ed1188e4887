"""cascade: Nemotron-Cascade post-training, from a laptop CPU to a GPU cluster.

The top-level package imports nothing heavy: torch and transformers are loaded only by the
modules that train or generate (engine, trainers, models), never by chat, config, data,
verifiers or sandbox.
"""

__version__ = "0.1.0"
