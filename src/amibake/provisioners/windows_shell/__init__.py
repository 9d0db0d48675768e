"""The ``windows-shell`` provisioner: its options (:mod:`.config`) and its implementation
(:mod:`.provisioner`)."""
