"""The shared vocabulary: the words every layer of sealagent speaks.

* :mod:`~sealagent.vocab.registry` – registered seal proofs, sector sizes, API versions;
* :mod:`~sealagent.vocab.tasks` – Lotus' task types, short names and priority order;
* :mod:`~sealagent.vocab.sectors` – sector ids, sector file types and file names.

This package sits at the bottom of the layers with :mod:`sealagent.errors`: it imports
nothing of sealagent but the errors and nothing outside the standard library, so the scheduler,
the plugin contract and the proofs core can all use it without loading each other.
"""
