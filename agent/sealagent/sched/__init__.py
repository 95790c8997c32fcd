"""The scheduler as pure logic: task types, queue order, fit, windows, selectors, assigners.

No I/O and no Trio here: the manager's event loop feeds events in and runs passes.

* :mod:`~sealagent.sched.resources` – the resource table and workers' overrides;
* :mod:`~sealagent.sched.queue` – the request queue in Lotus' order, grouped;
* :mod:`~sealagent.sched.fit` – resource accounting and the fit check;
* :mod:`~sealagent.sched.windows` – workers, windows, assignments;
* :mod:`~sealagent.sched.storage_view` – the storage snapshot a pass reads;
* :mod:`~sealagent.sched.selectors` – which workers may take a task;
* :mod:`~sealagent.sched.assigners` – which fitting window gets it;
* :mod:`~sealagent.sched.explain` – why a queued request waits, in words;
* :mod:`~sealagent.sched.scheduler` – the :class:`~sealagent.sched.scheduler.Scheduler`.

Task types themselves are shared vocabulary (:mod:`sealagent.vocab.tasks`).  Import from
the modules: this package's ``__init__`` stays empty.
"""
