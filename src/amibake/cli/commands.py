"""The verbs beyond ``version``: each module adds its command to :data:`amibake.cli.main.cli`."""
