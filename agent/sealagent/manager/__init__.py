"""The sealing manager (``sealagent miner run``).

It owns the sector pipeline and everything that must survive a restart:

- :mod:`~sealagent.manager.config`: ``config.toml`` with Lotus' ``[Storage]`` switches;
- :mod:`~sealagent.manager.db`: the SQLite store (WAL, schema migrations);
- :mod:`~sealagent.manager.beacon`: the local randomness beacon and epoch clock;
- :mod:`~sealagent.manager.fsm`: the sector state machine as pure logic;
- :mod:`~sealagent.manager.tasks`: the durable task queue and assignments;
- :mod:`~sealagent.manager.service`: the Trio service that drives them all.
"""
