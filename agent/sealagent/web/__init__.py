"""HTTP plumbing shared by the JSON-RPC API (:mod:`sealagent.rpc`) and the storage
endpoints (:mod:`sealagent.storage`), so that neither imports the other.

* :mod:`sealagent.web.auth`: JWT tokens with Lotus' ``Allow`` permissions, the secret
  file, API-info strings (``TOKEN:/ip4/127.0.0.1/tcp/2345/http``).
* :mod:`sealagent.web.asgi`: headers, bearer tokens, bodies and JSON responses in ASGI.
* :mod:`sealagent.web.client`: the HTTP client with a bearer token under every client.
"""
