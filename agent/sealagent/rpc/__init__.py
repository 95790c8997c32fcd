"""JSON-RPC 2.0 over HTTP between the manager and its agents.

* :mod:`sealagent.rpc.jsonrpc`: the method registry and the dispatcher (no HTTP).
* :mod:`sealagent.rpc.asgi`: the ASGI app serving ``POST /rpc/v0`` and mounted apps.
* :mod:`sealagent.rpc.server`: hypercorn on Trio, started in a nursery.
* :mod:`sealagent.rpc.client`: the JSON-RPC client and a synchronous one-shot call.
* :mod:`sealagent.rpc.netaddr`: the address others reach a wildcard listener at.

Tokens, API-info strings, the ASGI helpers and the bearer HTTP client are in
:mod:`sealagent.web`, shared with the storage endpoints.
"""
