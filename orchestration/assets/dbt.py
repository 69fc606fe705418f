"""dbt models as Dagster assets; dbt tests surface as asset checks.

Two selections of the same project: the daily transform (everything but tag:scoring) and the
scoring features, which read the candidates Python writes after retrieval.
"""

import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from ml.privacy.pseudonyms import warn_if_dev_key_on_real_data
from ml.settings import REPO_ROOT
from orchestration.partitions import ONE_PARTITION_PER_RUN, daily_partitions
from orchestration.resources import PlatformResource

# dbt is installed beside this interpreter; make it findable even when the venv is not activated.
_VENV_BIN = str(Path(sys.executable).parent)
if _VENV_BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _VENV_BIN + os.pathsep + os.environ.get("PATH", "")

dbt_project = DbtProject(project_dir=REPO_ROOT / "dbt_project")


def manifest_is_stale(project: DbtProject) -> bool:
    """True on a fresh clone, or when a model, test, macro or project file changed after the last parse."""
    if not project.manifest_path.exists():
        return True
    parsed_at = project.manifest_path.stat().st_mtime
    sources = [project.project_dir / "dbt_project.yml"]
    for folder in ("models", "macros", "tests"):
        sources += (project.project_dir / folder).rglob("*")
    return any(path.is_file() and path.stat().st_mtime > parsed_at for path in sources)


# @dbt_assets needs a current manifest at import time; dbt parse takes a few seconds.
if manifest_is_stale(dbt_project):
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


translator = AdflowDbtTranslator(
    settings=DagsterDbtTranslatorSettings(enable_asset_checks=True, enable_source_tests_as_checks=True)
)


def dbt_build(context: dg.AssetExecutionContext, dbt: DbtCliResource, platform: PlatformResource):
    """`dbt build` of the asset's selection as of the partition day; events stream back as
    materializations and asset check results."""
    settings = platform.settings  # also exports the warehouse path and pseudonym key for the dbt subprocess
    # The simulator leaves its ground truth beside the landing files; real logs have none.
    warn_if_dev_key_on_real_data(settings.pseudonym_key, simulated=settings.ground_truth_dir.exists(),
                                 logger=context.log)
    dbt_vars = {"as_of_date": context.partition_key, "attribution_window_days": settings.attribution_window_days}
    yield from dbt.cli(["build", "--vars", json.dumps(dbt_vars)], context=context).stream()


def partitioned_dbt_assets(name: str, **selection):
    return dbt_assets(manifest=dbt_project.manifest_path, partitions_def=daily_partitions,
                      backfill_policy=ONE_PARTITION_PER_RUN, dagster_dbt_translator=translator, name=name,
                      **selection)


@partitioned_dbt_assets("dbt_transform", exclude=SCORING_SELECTION)
def dbt_transform(context: dg.AssetExecutionContext, dbt: DbtCliResource, platform: PlatformResource):
    yield from dbt_build(context, dbt, platform)


@partitioned_dbt_assets("dbt_scoring_features", select=SCORING_SELECTION)
def dbt_scoring_features(context: dg.AssetExecutionContext, dbt: DbtCliResource, platform: PlatformResource):
    yield from dbt_build(context, dbt, platform)


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project)


DBT_PROJECT_DIR: Path = dbt_project.project_dir
