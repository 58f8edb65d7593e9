"""When downstream assets refresh on their own.

`eager()` minus its "no upstream partition missing" clause: a file that failed ingestion leaves a
partition without a materialization, and that must not freeze the whole graph below it.
"""

import dagster as dg

REFRESH_WHEN_UPSTREAM_CHANGES = dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing())
