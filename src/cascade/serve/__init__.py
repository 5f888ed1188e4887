"""`cascade serve`: an OpenAI-compatible chat-completions server for local checkpoints.

``schema`` validates requests, ``reply`` splits a completion into an assistant message
losslessly, ``batcher`` decodes concurrent requests together, ``server`` is the HTTP layer,
and ``process`` runs `cascade serve` as a child process and reads its URL.
"""
