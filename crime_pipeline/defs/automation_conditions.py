"""When downstream assets refresh on their own.

Below every asset with a blocking check, refresh waits for that check to pass
(`all_deps_blocking_checks_passed`): a failed audit stops automation as it stops a run. The merged
`incidents` table is the one fan-in where that would be wrong: a single file that failed ingestion
or its row accounting would freeze every later file. It reads only published (validated) files, so
it refreshes whenever any file changes, whatever the others' state.
"""

import dagster as dg

REFRESH_WHEN_UPSTREAM_CHANGES = (
    dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("eager, once upstream blocking checks pass")

MERGE_WHEN_ANY_FILE_CHANGES = dg.AutomationCondition.eager().without(
    ~dg.AutomationCondition.any_deps_missing()
).with_label("eager over files: a failed or missing file must not freeze the merge")

# Below model_evaluation: its Bayes check cannot run on real data and is then skipped, not passed.
# A skipped check must not freeze the figures and the report; a failed one must.
REFRESH_UNLESS_A_BLOCKING_CHECK_FAILED = (
    dg.AutomationCondition.eager()
    & dg.AutomationCondition.all_deps_match(
        dg.AutomationCondition.all_checks_match(~dg.AutomationCondition.check_failed(), blocking_only=True)
    ).with_label("no upstream blocking check failed")
).with_label("eager, unless an upstream blocking check failed")
