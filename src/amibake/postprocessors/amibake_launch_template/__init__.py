"""The ``amibake-launch-template`` post-processor: its options (:mod:`.config`) and its implementation
(:mod:`.postprocessor`)."""
