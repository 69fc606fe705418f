"""Seeded marketplace simulator: the embedded default data source and the ground truth of the product.

    from ml.simulator import SimulationConfig, simulate, GroundTruth
    summary = simulate(SimulationConfig(), data_root)
    oracle = GroundTruth.load(data_root / "ground_truth")
"""
from ml.simulator.config import SimulationConfig
from ml.simulator.ground_truth import GroundTruth
from ml.simulator.run import SimulationSummary, simulate
from ml.simulator.world import TrueModel

__all__ = ["GroundTruth", "SimulationConfig", "SimulationSummary", "TrueModel", "simulate"]
