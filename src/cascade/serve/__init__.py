"""`cascade serve`: an OpenAI-compatible chat-completions server for local checkpoints."""
