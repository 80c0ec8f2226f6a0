"""Where a new password goes, as plug-ins: the Protocol and the rule (base.py), one file per directory."""
