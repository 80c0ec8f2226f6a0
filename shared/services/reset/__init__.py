"""The self-service password reset flow, one file per role (see flow.py for the steps and the map)."""

from shared.services.reset.answers import (
    FlowProgress,
    FlowStarted,
    PasswordCheck,
    PasswordFailureInfo,
    ProofRequested,
    QuestionText,
    ResetDone,
    ResetQuestions,
)
from shared.services.reset.flow import ResetService

__all__ = ["FlowProgress", "FlowStarted", "PasswordCheck", "PasswordFailureInfo", "ProofRequested", "QuestionText",
           "ResetDone", "ResetQuestions", "ResetService"]
