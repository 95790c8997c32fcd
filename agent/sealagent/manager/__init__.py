"""The sealing manager (``sealagent miner run``).

It owns the sector pipeline and everything that must survive a restart:

- :mod:`~sealagent.manager.config`: ``config.toml`` with Lotus' ``[Storage]`` switches;
- :mod:`~sealagent.manager.db`: the SQLite store (WAL, schema migrations);
- :mod:`~sealagent.manager.beacon`: the local randomness beacon and epoch clock;
- :mod:`~sealagent.manager.fsm`: the sector state machine as pure logic;
- :mod:`~sealagent.manager.tasks`: the durable task queue and assignments;
- :mod:`~sealagent.manager.service`: the Trio service that drives them all, a thin front
  over parts that each own their state: :mod:`~sealagent.manager.sector_book`,
  :mod:`~sealagent.manager.task_book`, :mod:`~sealagent.manager.files`,
  :mod:`~sealagent.manager.window_broker`, :mod:`~sealagent.manager.sessions` and
  :mod:`~sealagent.manager.driver`, sharing one :mod:`~sealagent.manager.context`.
"""
