"""The interest encoder: a Transformer over each user's behavior sequence (ml/encoder)."""

import datetime as dt

import dagster as dg
import pandas as pd

from ml.encoder import EncoderConfig, fit_interest_encoder
from ml.encoder.distributed import fit_interest_encoder_distributed
from ml.encoder.mlflow_io import log_encoder_to_mlflow
from ml.label_sufficiency import no_champion_message
from ml.registry import CHAMPION, configure_mlflow, version_by_alias
from ml.warehouse import replace_rows
from orchestration.assets.common import model_dir, partition_day, run_tags
from ml.rankers.features import ENCODER_SAW_LABEL
from ml.training_days import encoder_days
from orchestration.assets.holdout import model_label_plan
from orchestration.partitions import ONE_PARTITION_PER_RUN, daily_partitions
from orchestration.resources import PlatformResource

ENCODER_MODEL_NAME = "interest_encoder"
ENCODER_RUN_ID_FILE = "mlflow_run_id"


class EncoderTrainingConfig(dg.Config):
    """Defaults sized for a 2-core CPU in the daily run (~2 min); raise them on a GPU."""

    max_len: int = 30
    d_model: int = 32
    n_layers: int = 2
    n_heads: int = 2
    max_epochs: int = 3
    patience: int = 1
    batch_size: int = 512
    max_train_examples: int | None = 50_000
    max_validation_examples: int | None = 100_000
    seed: int = 42


def load_encoder_inputs(conn, as_of: dt.date) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    event_stream = conn.sql("select * from main.user_event_stream").df()
    impressions = conn.sql(
        "select impression_id, user_key, ad_id, impression_ts, impression_date, label_click "
        "from main.ctr_training_set order by impression_id"
    ).df()
    ads = conn.sql(
        "select ad_id, campaign_id, category_id, brand_id from main.ad_features where snapshot_date = ? "
        "order by ad_id",
        params=[as_of + dt.timedelta(days=1)],
    ).df()
    return event_stream, impressions, ads


def encoder_run_id(settings, day: dt.date) -> str:
    return (model_dir(settings, ENCODER_MODEL_NAME, day) / ENCODER_RUN_ID_FILE).read_text().strip()


def encoder_trained(settings, day: dt.date) -> bool:
    """Whether this partition trained an encoder (a skipped one leaves no run id behind)."""
    return (model_dir(settings, ENCODER_MODEL_NAME, day) / ENCODER_RUN_ID_FILE).exists()


def skip_encoder(settings, day: dt.date, plan) -> dg.MaterializeResult:
    """Too few click labels: keep the champion, or stop here when there is none (nothing could
    retrieve candidates downstream)."""
    configure_mlflow(settings)
    champion = version_by_alias(ENCODER_MODEL_NAME, CHAMPION)
    if champion is None:
        raise dg.Failure(description=no_champion_message(ENCODER_MODEL_NAME, plan.click))
    (model_dir(settings, ENCODER_MODEL_NAME, day) / ENCODER_RUN_ID_FILE).unlink(missing_ok=True)
    return dg.MaterializeResult(metadata={
        "skipped": f"{plan.click.reason}; champion v{champion.version} keeps serving",
        **plan.as_metadata(),
    })


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=ONE_PARTITION_PER_RUN,
    group_name="models",
    kinds={"torch", "mlflow"},
    deps=["user_event_stream", "ctr_training_set", "ad_features"],
    description="Transformer encoder over users' last events (BST/SASRec style), trained on the days "
    "on the earlier half of the rankers' training days (so the rankers learn from out-of-sample encoder "
    "features); writes user and ad embeddings (ml.user_embeddings, ml.ad_embeddings) and "
    "per-impression encoder features (ml.encoder_impression_scores); registered in MLflow.",
)
def interest_encoder(context: dg.AssetExecutionContext, config: EncoderTrainingConfig, platform: PlatformResource):
    day = partition_day(context)
    settings = platform.settings
    with platform.warehouse(read_only=True) as conn:
        plan = model_label_plan(conn)
        if not plan.click.trainable:
            return skip_encoder(settings, day, plan)
        event_stream, impressions, ads = load_encoder_inputs(conn, day)
    days = plan.click.days
    # The encoder never learns from the rankers' validation or test day, nor from their later training
    # days: its features there are out of sample, as they will be on tomorrow's traffic.
    learn_days = encoder_days(days)
    impression_days = pd.to_datetime(impressions["impression_date"]).dt.date
    encoder_impressions = impressions[impression_days.isin([*learn_days.train_dates, learn_days.validation_date])]
    encoder_config = EncoderConfig(**config.model_dump())
    if settings.encoder_processes > 1:
        fitted = fit_interest_encoder_distributed(event_stream, encoder_impressions, ads, learn_days.validation_date,
                                                  encoder_config, settings.encoder_processes)
    else:
        fitted = fit_interest_encoder(event_stream, encoder_impressions, ads, learn_days.validation_date,
                                      encoder_config)
    local_dir = fitted.save(model_dir(settings, ENCODER_MODEL_NAME, day))

    configure_mlflow(settings)
    run_id, version = log_encoder_to_mlflow(fitted, registered_name=ENCODER_MODEL_NAME, tags=run_tags(context))
    # Rankers trained on this encoder's features record its run, so scoring uses the same encoder.
    (local_dir / ENCODER_RUN_ID_FILE).write_text(run_id)

    end_of_day = pd.Timestamp(day + dt.timedelta(days=1))
    user_embeddings = fitted.user_embeddings(event_stream, as_of=end_of_day).assign(as_of_date=day)
    ad_embeddings = fitted.ad_embeddings().assign(as_of_date=day)
    impression_scores = fitted.score_impressions(event_stream, impressions).assign(
        **{ENCODER_SAW_LABEL: impression_days.isin(learn_days.train_dates).to_numpy()}, as_of_date=day
    )
    with platform.warehouse() as conn:
        replace_rows(conn, "ml.user_embeddings", user_embeddings, "as_of_date", day)
        replace_rows(conn, "ml.ad_embeddings", ad_embeddings, "as_of_date", day)
        replace_rows(conn, "ml.encoder_impression_scores", impression_scores, "as_of_date", day)

    history = pd.DataFrame(fitted.history)
    return dg.MaterializeResult(
        metadata={
            **{k: v for k, v in fitted.metrics.items() if isinstance(v, (int, float, str))},
            **plan.as_metadata(),
            "encoder_train_days": f"{learn_days.train_dates[0]}..{learn_days.train_dates[-1]}",
            "encoder_validation_day": learn_days.validation_date.isoformat(),
            "training_history": dg.MetadataValue.md(history.to_markdown(index=False)),
            "users_embedded": len(user_embeddings),
            "ads_embedded": len(ad_embeddings),
            "mlflow_run_id": run_id,
            "model_version": f"{ENCODER_MODEL_NAME} v{version.version}",
        }
    )
