"""Serving: the deploy gate, the local MLServer deployer and the Kubernetes builders."""
