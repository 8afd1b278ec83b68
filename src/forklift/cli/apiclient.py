"""API clients on the forklift server a command talks to (see `forklift.serverfile` for the order
in which it is found: --endpoint-url, FORKLIFT_URL, AWS_ENDPOINT_URL_SAGEMAKER, server.json)."""

from __future__ import annotations

import click

# The server-file and JSON-client modules are imported when a command first calls the server, not by `--help`.

endpoint_option = click.option(
    "--endpoint-url", metavar="URL",
    help="The forklift server (default: FORKLIFT_URL, AWS_ENDPOINT_URL_SAGEMAKER, then the server "
         "started for this FORKLIFT_HOME).")


def server_url(endpoint_url: str | None) -> str:
    from forklift.config import forklift_home
    from forklift.serverfile import server_url as find

    return find(forklift_home(), endpoint_url)[0]


def client(service: str, endpoint_url: str | None):
    """A client for `service` (`sagemaker`, `logs`) on the command's server: the JSON protocol over
    the standard library, which answers long before boto3 would have loaded."""
    from forklift.jsonclient import JsonClient

    return JsonClient(service, server_url(endpoint_url))
