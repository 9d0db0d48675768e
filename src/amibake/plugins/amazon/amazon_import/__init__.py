"""The ``amazon-import`` post-processor, which amibake validates but does not run: its options
(:mod:`.config`)."""
