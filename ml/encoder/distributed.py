"""The interest encoder trained by several processes with torch DistributedDataParallel (gloo on
CPU, nccl on GPUs): `fit_interest_encoder_distributed` writes the inputs once, runs

    python -m torch.distributed.run --standalone --nproc_per_node N -m ml.encoder.distributed INPUTS OUTPUT

and loads the encoder rank 0 saved. Each process trains `fit_interest_encoder` on its share of every
batch (ml/encoder/loop.py), so the model, the global batch and early stopping are those of one
process. The rendezvous is on 127.0.0.1 (--standalone); a multi-node run passes torchrun's own
--nnodes/--rdzv-endpoint instead and runs this module the same way.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch
import torch.distributed as dist

from ml.encoder.config import EncoderConfig
from ml.encoder.fitted import FittedEncoder
from ml.encoder.train import fit_interest_encoder

INPUT_FRAMES = ("event_stream", "impressions", "ads")


def fit_interest_encoder_distributed(event_stream: pd.DataFrame, impressions: pd.DataFrame, ads: pd.DataFrame,
                                     validation_date: dt.date, config: EncoderConfig, processes: int,
                                     timeout_s: float = 6 * 3600) -> FittedEncoder:
    with tempfile.TemporaryDirectory(prefix="encoder-ddp-") as scratch:
        inputs, output = Path(scratch) / "inputs", Path(scratch) / "encoder"
        inputs.mkdir()
        for name, frame in zip(INPUT_FRAMES, (event_stream, impressions, ads)):
            frame.to_parquet(inputs / f"{name}.parquet", index=False)
        (inputs / "run.json").write_text(json.dumps({"config": dataclasses.asdict(config),
                                                     "validation_date": validation_date.isoformat()}))
        subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                        "-m", "ml.encoder.distributed", str(inputs), str(output)], check=True, timeout=timeout_s)
        return FittedEncoder.load(output)


def main(inputs: Path, output: Path) -> None:
    """One torchrun process: train on its shares, rank 0 saves the encoder."""
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank = dist.get_rank()
    run = json.loads((inputs / "run.json").read_text())
    config = EncoderConfig(**run["config"])
    if cuda:  # one GPU per process
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local_rank)
        config = dataclasses.replace(config, device=f"cuda:{local_rank}")
    frames = [pd.read_parquet(inputs / f"{name}.parquet") for name in INPUT_FRAMES]
    try:
        fitted = fit_interest_encoder(*frames, dt.date.fromisoformat(run["validation_date"]), config,
                                      progress=rank == 0)
        if rank == 0:
            fitted.metrics["processes"] = dist.get_world_size()
            fitted.save(output)
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
