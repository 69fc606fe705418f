"""The training loop shared by click training and next-item training: seeded order, Adam,
autocast (and torch.compile of the loss where it helps), per-epoch validation with early stopping
and best-state restore, a tqdm bar per epoch.

Under torch.distributed (`torchrun`, ml/encoder/distributed.py) the same loop trains data-parallel:
the model is wrapped in DistributedDataParallel, every process draws the same seeded order and takes
its share of each global batch, so the global batch and the number of steps do not change with the
number of processes; gradients are averaged by DDP. Every process validates on the whole validation
set (the same weights give the same score), so all stop at the same epoch."""
from __future__ import annotations

import copy
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from ml.encoder.device import DeviceChoice

Batch = dict[str, torch.Tensor]


@dataclass
class LoopResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = float("-inf")
    epochs_run: int = 0
    train_seconds: float = 0.0
    train_examples: int = 0

    @property
    def train_sequences_per_second(self) -> float:
        return self.train_examples / self.train_seconds if self.train_seconds > 0 else 0.0


def train_with_early_stopping(
    model: torch.nn.Module,
    train_tensors: Batch,
    loss_fn: Callable[[torch.nn.Module, Batch], torch.Tensor],
    validate: Callable[[torch.nn.Module], dict[str, float]],
    selection_metric: str,
    *,
    batch_size: int,
    lr: float,
    max_epochs: int,
    patience: int,
    seed: int,
    device_choice: DeviceChoice,
    progress: bool = True,
    description: str = "encoder",
    examples_per_epoch: int | None = None,
    weight_decay: float = 0.0,
    lr_multiplier: Callable[[int], float] | None = None,
    ema_decay: float = 0.0,
    average_epochs: int = 1,
    smoothing_epochs: int = 1,
) -> LoopResult:
    """Train `model` in place; on return it holds the weights of the best validation epoch.

    Throughput counts `examples_per_epoch` (default: rows of `train_tensors`), e.g. the supervised
    positions when each row is a window with a loss at many positions.

    `weight_decay` > 0 trains with AdamW (decoupled decay) instead of Adam; `lr_multiplier(step)`
    scales `lr` at each optimizer step (0-based, counted over the whole run), e.g. a warmup.
    `ema_decay` > 0 validates (and returns) an exponential moving average of the weights, updated
    after every step, instead of the last step's weights. `average_epochs` = k > 1 validates (and
    returns) the uniform average of the weights at the end of the last k epochs (fewer in the
    first k - 1): early stopping then follows a smoother curve than one epoch's weights give.
    `smoothing_epochs` = k > 1 has early stopping follow the mean of the selection metric over the
    last k epochs (fewer in the first k - 1) and keeps the weights of the epoch that mean peaks at:
    one lucky epoch no longer stops the run, a rise that holds does.
    """
    model.to(device_choice.device)
    rank, world = distributed_rank()
    trained = model if world == 1 else DistributedDataParallel(
        model, device_ids=[device_choice.device] if device_choice.device.type == "cuda" else None)
    optimizer = (torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay) if weight_decay > 0
                 else torch.optim.Adam(model.parameters(), lr=lr))
    averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ema_decay)) if ema_decay > 0 else None
    evaluated = model if averaged is None else averaged.module
    epoch_ends: deque[dict[str, torch.Tensor]] = deque(maxlen=max(1, average_epochs))
    if average_epochs > 1:
        evaluated = copy.deepcopy(evaluated)  # holds the average; `model` keeps training
    training_loss = device_choice.compiled(loss_fn)  # torch.compile'd on CUDA by default
    step = 0
    n_examples = len(next(iter(train_tensors.values())))
    order_generator = torch.Generator().manual_seed(seed)  # data order depends on the seed only
    result, best_state, epochs_without_gain = LoopResult(), None, 0
    for epoch in range(1, max_epochs + 1):
        model.train()
        order = torch.randperm(n_examples, generator=order_generator)
        batches = range(0, n_examples, batch_size)
        bar = tqdm(batches, desc=f"{description} epoch {epoch}", disable=not progress, leave=False)
        started, loss_sum, seen = time.perf_counter(), 0.0, 0
        for start in bar:
            rows = order[start:start + batch_size]
            if world > 1:
                if len(rows) < world:  # a last batch too small to share: skipped by every process alike
                    continue
                rows = rows[rank::world]
            batch = {name: device_choice.to_device(values[rows]) for name, values in train_tensors.items()}
            with device_choice.autocast():
                loss = training_loss(trained, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if lr_multiplier is not None:
                for group in optimizer.param_groups:
                    group["lr"] = lr * lr_multiplier(step)
            optimizer.step()
            if averaged is not None:
                averaged.update_parameters(model)
            step += 1
            loss_sum, seen = loss_sum + float(loss.detach()) * len(rows), seen + len(rows)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}")
        epoch_seconds = time.perf_counter() - started
        result.train_seconds += epoch_seconds
        result.train_examples += n_examples if examples_per_epoch is None else examples_per_epoch
        result.epochs_run = epoch
        if average_epochs > 1:
            source = model if averaged is None else averaged.module
            epoch_ends.append({name: value.detach().clone() for name, value in source.state_dict().items()})
            evaluated.load_state_dict(_uniform_average(list(epoch_ends)))
        evaluated.eval()
        with torch.no_grad():
            val_metrics = validate(evaluated)
        if world > 1:  # the epoch's training loss over every process's share
            loss_sum = _summed(loss_sum, device_choice)
        result.history.append({"epoch": epoch, "train_loss": loss_sum / max(n_examples, 1),
                               "epoch_seconds": epoch_seconds, **val_metrics})
        recent = [row[selection_metric] for row in result.history[-max(1, smoothing_epochs):]]
        score = sum(recent) / len(recent)
        if score > result.best_score:
            result.best_score, result.best_epoch, epochs_without_gain = score, epoch, 0
            best_state = copy.deepcopy(evaluated.state_dict())
        else:
            epochs_without_gain += 1
            if epochs_without_gain >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return result


def _uniform_average(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Mean of each floating tensor over `states`; any other tensor (counters) from the latest."""
    return {name: torch.stack([state[name] for state in states]).mean(0) if value.is_floating_point() else value
            for name, value in states[-1].items()}


def distributed_rank() -> tuple[int, int]:
    """(this process's rank, number of processes): (0, 1) outside torch.distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _summed(value: float, device_choice: DeviceChoice) -> float:
    total = torch.tensor([value], dtype=torch.float64, device=device_choice.device)
    dist.all_reduce(total)
    return float(total.item())
