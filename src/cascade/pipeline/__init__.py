"""The stage runner behind ``cascade run`` (``runner``) and the run directory it writes (``layout``).

The report on a finished (or running) run is its own package, ``cascade.report``.
"""
