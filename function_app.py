"""The one Azure Functions app: it registers each capability's blueprint and nothing else."""

import azure.functions as func

from functions import health, warmup

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

app.register_functions(health.bp)
app.register_functions(warmup.bp)
