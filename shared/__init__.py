"""The SSPR service's own code: configuration, domain rules, use cases and adapters (no azure.functions)."""

__version__ = "0.1.0"
