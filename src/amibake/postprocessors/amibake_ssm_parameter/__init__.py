"""The ``amibake-ssm-parameter`` post-processor: its options (:mod:`.config`) and its implementation
(:mod:`.postprocessor`)."""
