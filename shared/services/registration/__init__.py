"""Registration of a signed-in user's security info, one file per role.

flow.py (code methods, overview, removal, reconfirmation), app.py (authenticator app setup), questions.py
(security questions), security_info.py (the one saver of the summary and its policy), user.py (who registers,
their audit event), answers.py (the response models). The methods themselves are shared/services/methods.
"""

from shared.services.registration.answers import (
    AppSetup,
    ChallengeStarted,
    QuestionCatalog,
    SecurityInfoView,
    StatusInfo,
    Verified,
)
from shared.services.registration.flow import RegistrationService
from shared.services.registration.user import User, user_of

__all__ = ["AppSetup", "ChallengeStarted", "QuestionCatalog", "RegistrationService", "SecurityInfoView", "StatusInfo",
           "User", "Verified", "user_of"]
