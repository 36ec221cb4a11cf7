"""Training: the settings of a run (settings), the loop (loop), and `suite train` as a library
call (jobs)."""

from suite.train.jobs import checkpoint_path, train_one
from suite.train.loop import TrainResult, train
from suite.train.settings import Optimisation, TrainConfig, fit_model, train_data

__all__ = ["Optimisation", "TrainConfig", "TrainResult", "checkpoint_path", "fit_model", "train", "train_data", "train_one"]
