"""Storage paths, sector file layout, and moving sector files between hosts.

* :mod:`sealagent.storage.layout`: file types, sector names, directories, space needed.
* :mod:`sealagent.storage.meta`: ``sectorstore.json`` (PathMeta) and FsStat.
* :mod:`sealagent.storage.paths`: local paths, reservations, ``storage.json``.
* :mod:`sealagent.storage.index`: the manager's index of paths and sector files.
* :mod:`sealagent.storage.remote`: the ``/remote`` ASGI handler.
* :mod:`sealagent.storage.fetch`: the client that downloads from ``/remote``.
"""
