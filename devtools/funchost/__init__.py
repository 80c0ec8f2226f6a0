"""A local Azure Functions host that runs the project's own `function_app.app` without Core Tools."""
