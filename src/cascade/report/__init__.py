"""The cascade report: every eval set after every stage, and the paper's claims judged on it.

- ``matrix``: the stages x eval-sets matrix read from a run directory (``build_matrix``);
- ``claims``: the paper's claims judged on it, each comparison paired per prompt;
- ``render``: Markdown, CSV, JSON and the terminal tables;
- ``plot``: the heat map cascade.png;
- ``write``: all of those written into the run directory (``write_report``);
- ``pooled``: the claims pooled over several runs (seeds) of one recipe.

Torch-free: the report must open on a laptop that never trained anything.
"""
