"""Registration of a signed-in user's security info, one file per role.

flow.py (code methods, overview, removal, reconfirmation), app.py (authenticator app setup), questions.py
(security questions), security_info.py (the one saver of the summary and its policy), user.py (who registers,
their audit event), answers.py (the response models). The methods themselves are shared/services/methods.

Nothing is imported here: a blueprint that needs only the response models must not import the whole flow at the
app's start (issue 20, cold start); import each part from its own module.
"""
