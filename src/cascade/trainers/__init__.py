"""Training loops written against the engine seam: ``sft``, ``rm`` and ``grpo``, with the
shared settings, metrics log and progress bar in ``common`` and batching in ``batching``.

Deliberately empty of imports so ``cascade.trainers.common`` stays cheap and torch-free.
"""
