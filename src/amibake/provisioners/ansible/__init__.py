"""The ``ansible`` provisioner, which amibake validates but does not run: its options
(:mod:`.config`)."""
