"""The on-premises agent: takes sealed password jobs from Azure Queue Storage and applies them to AD over LDAPS."""

VERSION = "0.1.0"
