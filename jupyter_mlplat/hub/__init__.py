"""JupyterHub integration: authenticator, local profile spawner, secrets, hub configuration."""
