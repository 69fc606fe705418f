"""dbt models as Dagster assets; dbt tests surface as asset checks.

Two selections of the same project: the daily transform (everything but tag:scoring) and the
scoring features, which read the candidates Python writes after retrieval.
"""

import json
import sys
from pathlib import Path
from typing import Any, Mapping

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from ml.settings import REPO_ROOT
from orchestration.partitions import daily_partitions
from orchestration.resources import PlatformResource

dbt_project = DbtProject(project_dir=REPO_ROOT / "dbt_project")
if not dbt_project.manifest_path.exists():
    # @dbt_assets needs a manifest at import time; parse once on a fresh clone.
    dbt_project.preparer.prepare(dbt_project)
else:
    dbt_project.prepare_if_dev()

SCORING_SELECTION = "tag:scoring"


class AdflowDbtTranslator(DagsterDbtTranslator):
    """Sources map onto the Python assets that write them; models keep their dbt names."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            source, table = dbt_resource_props["source_name"], dbt_resource_props["name"]
            return dg.AssetKey(["raw", table]) if source == "raw" else dg.AssetKey([table])
        return dg.AssetKey([dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str:
        return "delivery" if "scoring" in dbt_resource_props.get("tags", []) else "transform"


translator = AdflowDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


def dbt_vars(context: dg.AssetExecutionContext) -> str:
    return json.dumps({"as_of_date": context.partition_key})


@dbt_assets(
    manifest=dbt_project.manifest_path,
    exclude=SCORING_SELECTION,
    partitions_def=daily_partitions,
    # One partition per run: each run builds the marts as of its own day.
    backfill_policy=dg.BackfillPolicy.multi_run(1),
    dagster_dbt_translator=translator,
    name="dbt_transform",
)
def dbt_transform(context: dg.AssetExecutionContext, dbt: DbtCliResource, platform: PlatformResource):
    platform.settings  # exports warehouse path and salt for the dbt subprocess
    yield from dbt.cli(["build", "--vars", dbt_vars(context)], context=context).stream()


@dbt_assets(
    manifest=dbt_project.manifest_path,
    select=SCORING_SELECTION,
    partitions_def=daily_partitions,
    # One partition per run: each run builds the marts as of its own day.
    backfill_policy=dg.BackfillPolicy.multi_run(1),
    dagster_dbt_translator=translator,
    name="dbt_scoring_features",
)
def dbt_scoring_features(context: dg.AssetExecutionContext, dbt: DbtCliResource, platform: PlatformResource):
    platform.settings
    yield from dbt.cli(["build", "--vars", dbt_vars(context)], context=context).stream()


def dbt_resource() -> DbtCliResource:
    # The venv's dbt, so the UI and tests work without the venv on PATH.
    executable = Path(sys.executable).with_name("dbt")
    return DbtCliResource(project_dir=dbt_project, dbt_executable=str(executable) if executable.exists() else "dbt")


DBT_PROJECT_DIR: Path = dbt_project.project_dir
