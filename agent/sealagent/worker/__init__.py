"""The agent (Lotus' ``lotus-worker``): a Trio process that seals on one machine.

* :mod:`~sealagent.worker.agent`: :func:`run_agent`, the root nursery and task flow;
* :mod:`~sealagent.worker.link`: registration, session and heartbeats at the manager;
* :mod:`~sealagent.worker.windows`: the two scheduling windows (long-polls);
* :mod:`~sealagent.worker.prepare`: the preparing window (fetching sector files);
* :mod:`~sealagent.worker.execute`: the executing window (phases in child processes);
* :mod:`~sealagent.worker.reporter`, :mod:`~sealagent.worker.outbox`: durable results;
* :mod:`~sealagent.worker.journal`: running tasks, resumed after a crash;
* :mod:`~sealagent.worker.inventory`: CPUs, memory, swap, GPUs;
* :mod:`~sealagent.worker.local_storage`, :mod:`~sealagent.worker.repo`: files on disk;
* :mod:`~sealagent.worker.api`: the agent's own ``Worker.*`` API;
* :mod:`~sealagent.worker.guard`: ties each phase's child process to the agent's life.

Nothing is imported here, so that ``python -m sealagent.worker.guard`` starts fast.
"""
