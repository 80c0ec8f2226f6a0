"""The self-service password reset flow, one file per role (see flow.py for the steps and the map).

Nothing is imported here: a blueprint that needs only the response models (answers.py) must not import the whole
flow at the app's start (issue 20, cold start); import each part from its own module.
"""
