"""The encoder trained data-parallel by two torchrun processes (gloo on CPU), against one process on
the same data: the loss falls, and the saved model loads and scores like the single-process one."""
from __future__ import annotations

import dataclasses

import numpy as np
from sklearn.metrics import roc_auc_score
from test_encoder import SMALL, VALIDATION_DATE, make_marketplace

from ml.encoder import fit_interest_encoder
from ml.encoder.distributed import fit_interest_encoder_distributed


def test_two_processes_train_the_encoder_data_parallel():
    event_stream, impressions, ads = make_marketplace()
    config = dataclasses.replace(SMALL, max_epochs=4, patience=4)
    parallel = fit_interest_encoder_distributed(event_stream, impressions, ads, VALIDATION_DATE, config, processes=2)
    single = fit_interest_encoder(event_stream, impressions, ads, VALIDATION_DATE, config, progress=False)

    assert parallel.metrics["processes"] == 2 and parallel.metrics["epochs_run"] == 4
    losses = [epoch["train_loss"] for epoch in parallel.history]
    assert losses[-1] < 0.9 * losses[0] and losses == sorted(losses, reverse=True), losses
    held_out = impressions[impressions["impression_date"] == VALIDATION_DATE]
    logits = {name: fitted.score_impressions(event_stream, held_out)["encoder_logit"].to_numpy()
              for name, fitted in (("parallel", parallel), ("single", single))}
    aucs = {name: roc_auc_score(held_out["label_click"], values) for name, values in logits.items()}
    assert aucs["parallel"] > 0.75 and abs(aucs["parallel"] - aucs["single"]) < 0.03, aucs
    assert np.corrcoef(logits["parallel"], logits["single"])[0, 1] > 0.95
