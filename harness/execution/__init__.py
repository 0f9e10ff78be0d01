"""Where work runs: this process, a pool of local processes, or a Ray cluster, behind one call.

``executors.map_unordered(task, items, settings, context)`` runs ``task(context_value, item)``
for every item and yields ``(index, result)`` as each finishes. Tasks are pure functions of
their inputs (every random number comes from a seed in the item), so results do not depend
on the executor or the number of workers; only their order of arrival does, and callers
put results back in item order. A worker that dies in the middle of a task is replaced and
the task retried; the driver alone writes files and logs to MLflow.
"""
