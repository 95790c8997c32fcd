"""JSON-RPC 2.0 over HTTP between the manager and its agents.

* :mod:`sealagent.rpc.auth`: JWT tokens with Lotus' ``Allow`` permissions, the secret
  file, API-info strings (``TOKEN:/ip4/127.0.0.1/tcp/2345/http``).
* :mod:`sealagent.rpc.jsonrpc`: the method registry and the dispatcher (no HTTP).
* :mod:`sealagent.rpc.asgi`: the ASGI app serving ``POST /rpc/v0`` and mounted apps.
* :mod:`sealagent.rpc.server`: hypercorn on Trio, started in a nursery.
* :mod:`sealagent.rpc.http`: the HTTP client with a bearer token under every client.
* :mod:`sealagent.rpc.client`: the JSON-RPC client and a synchronous one-shot call.
* :mod:`sealagent.rpc.netaddr`: the address others reach a wildcard listener at.
"""
