"""The one Azure Functions app: it registers each capability's blueprint and nothing else."""

import azure.functions as func

from functions import (
    audit,
    compliance,
    enablement,
    health,
    hooks,
    maintenance,
    notifications,
    openapi,
    pages,
    password_expiration,
    policy,
    registration,
    registration_methods,
    reset,
    signin_events,
    tenant,
    warmup,
)

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

app.register_functions(health.bp)
app.register_functions(warmup.bp)
app.register_functions(openapi.bp)
app.register_functions(audit.bp)
app.register_functions(tenant.bp)
app.register_functions(password_expiration.bp)
app.register_functions(policy.bp)
app.register_functions(enablement.bp)
app.register_functions(hooks.bp)
app.register_functions(signin_events.bp)
app.register_functions(registration.bp)
app.register_functions(registration_methods.bp)
app.register_functions(reset.bp)
app.register_functions(notifications.bp)
app.register_functions(compliance.bp)
app.register_functions(maintenance.bp)
app.register_functions(pages.bp)
