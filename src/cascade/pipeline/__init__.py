"""The cascade pipeline: the stage runner (``runner``) and the cascade report (``report``)."""
