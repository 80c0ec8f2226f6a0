"""Graph + identity emulator for dev and tests: a demo Entra tenant behind Graph v1.0 and OIDC endpoints."""
