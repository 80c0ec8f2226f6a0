"""Verification methods as plug-ins: one small Protocol (base.py), one file per method, one registry."""

from shared.services.methods.base import Methods, Proof, SecretMethod, VerificationMethod, standard_methods
from shared.services.methods.code import ContactCode

__all__ = ["ContactCode", "Methods", "Proof", "SecretMethod", "VerificationMethod", "standard_methods"]
