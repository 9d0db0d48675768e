"""The ``windows-restart`` provisioner: its options (:mod:`.config`) and its implementation
(:mod:`.provisioner`)."""
