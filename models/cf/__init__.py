"""The CF model zoo. ``MODELS`` maps each name used in scenarios and the CLI to its class."""
