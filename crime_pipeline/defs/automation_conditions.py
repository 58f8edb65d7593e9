"""When downstream assets refresh on their own (and what `crime-pipeline run` rebuilds: the same rules).

Dagster's `eager()`, with two changes. A dependency counts as updated when its *data version*
changed, not on any materialization: rebuilding an asset by hand from the same inputs publishes the
same data, and nothing below it is redone (every asset reports a content-derived data version). And
a new `code_version` refreshes the asset, as the UI marks it stale.

Below every asset with a blocking check, refresh waits for that check to pass
(`all_deps_blocking_checks_passed`): a failed audit stops automation as it stops a run. The merged
`incidents` table is the one fan-in where that would be wrong: a single file that failed ingestion
or its row accounting would freeze every later file. It reads only published (validated) files, so
it refreshes whenever any file changes, whatever the others' state.
"""

from __future__ import annotations

import dagster as dg

# any_deps_updated() (a dependency updated by another run, or requested this tick), where "updated"
# means its data version changed.
NEW_DATA_UPSTREAM = (
    dg.AutomationCondition.any_deps_updated()
    .replace("newly_updated", dg.AutomationCondition.data_version_changed())
    .with_label("any_deps_data_changed")
)

NEW_DATA_OR_CODE = (NEW_DATA_UPSTREAM | dg.AutomationCondition.code_version_changed()).with_label(
    "new upstream data or a new code version"
)

# eager(): (newly_missing | any_deps_updated).since_last_handled(), nothing missing or in progress
# upstream, not itself in progress; only what counts as "updated" is replaced.
EAGER_ON_NEW_DATA = dg.AutomationCondition.eager().replace("any_deps_updated", NEW_DATA_OR_CODE)

REFRESH_WHEN_UPSTREAM_CHANGES = (
    EAGER_ON_NEW_DATA & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("eager, once upstream blocking checks pass")

MERGE_WHEN_ANY_FILE_CHANGES = EAGER_ON_NEW_DATA.without(~dg.AutomationCondition.any_deps_missing()).with_label(
    "eager over files: a failed or missing file must not freeze the merge"
)

# Below model_evaluation: its Bayes check cannot run on real data and is then skipped, not passed.
# A skipped check must not freeze the figures and the report; a failed one must.
REFRESH_UNLESS_A_BLOCKING_CHECK_FAILED = (
    EAGER_ON_NEW_DATA
    & dg.AutomationCondition.all_deps_match(
        dg.AutomationCondition.all_checks_match(~dg.AutomationCondition.check_failed(), blocking_only=True)
    ).with_label("no upstream blocking check failed")
).with_label("eager, unless an upstream blocking check failed")
