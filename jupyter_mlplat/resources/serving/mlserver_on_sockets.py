"""Run ``mlserver start`` with its APIs on Unix sockets instead of TCP ports.

Run by the serving venv's Python (jupyter_mlplat.serving.local), not imported by the
project. MLServer has no setting for it, so two of its calls are wrapped: uvicorn's config
gets ``uds`` (which uvicorn binds instead of host and port), and the gRPC server's one
``add_insecure_port`` gets a ``unix:`` address. A loopback TCP port can be reached by every
account on the machine, a user's kernel too; a socket in the model server account's 0700
folder only by that account and root (the platform service).

Environment: ``MLPLAT_HTTP_SOCKET`` and ``MLPLAT_GRPC_SOCKET`` (absolute paths); the
arguments are mlserver's (``start <repository>``).
"""

import os
import sys

import grpc.aio
from mlserver.rest import server as rest_server

HTTP_SOCKET = os.environ.pop("MLPLAT_HTTP_SOCKET")
GRPC_SOCKET = os.environ.pop("MLPLAT_GRPC_SOCKET")
_rest_config = rest_server.RESTServer._get_config
_grpc_server = grpc.aio.server


def _rest_on_socket(self):
    config = _rest_config(self)
    config.uds = HTTP_SOCKET
    return config


def _grpc_on_socket(*args, **kwargs):
    server = _grpc_server(*args, **kwargs)
    add_port = server.add_insecure_port
    server.add_insecure_port = lambda _address: add_port(f"unix:{GRPC_SOCKET}")
    return server


rest_server.RESTServer._get_config = _rest_on_socket
grpc.aio.server = _grpc_on_socket

if __name__ == "__main__":
    from mlserver.cli.main import main

    sys.argv[0] = "mlserver"
    sys.exit(main())
