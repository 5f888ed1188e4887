"""Evaluation: benchmarks (data + prompt + verifier + metric), backends, and the eval runner."""
