"""The ``null`` builder: no machine of its own; connect to an existing host (or none) and provision."""
