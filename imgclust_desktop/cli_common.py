"""What `cli.py` and the mode commands in `cli_modes.py` share, so neither imports the other back."""


class BadArguments(Exception):
    """Arguments that parse but make no sense together (exit code 2)."""
