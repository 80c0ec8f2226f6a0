"""The one Azure Functions app: it registers each capability's blueprint and nothing else."""

import azure.functions as func

from functions import (
    access_pass,
    audit,
    change,
    compliance,
    enablement,
    expiry_reminders,
    health,
    helpdesk,
    hooks,
    maintenance,
    notifications,
    onprem,
    openapi,
    pages,
    passkeys,
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
app.register_functions(change.bp)
app.register_functions(passkeys.bp)
app.register_functions(access_pass.bp)
app.register_functions(helpdesk.bp)
app.register_functions(notifications.bp)
app.register_functions(onprem.bp)
app.register_functions(compliance.bp)
app.register_functions(expiry_reminders.bp)
app.register_functions(maintenance.bp)
app.register_functions(pages.bp)
