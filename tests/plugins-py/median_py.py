"""A test-only Python assessor, so the assessor world's glue runs in the sandbox: the median stopping
rule of plugins/median_stop, reduced (stop at epoch e when the best accuracy so far is below the
median of the completed curves at epoch e, once `min_completed` curves are known)."""
import statistics
from dataclasses import dataclass

from nas_plugin import Assessor, LearningCurve, Verdict, register_assessor


@dataclass
class Config:
    min_completed: int = 2


class MedianPy(Assessor):
    NAME = "median_py"
    DESCRIPTION = "Median stopping rule, in Python (test plugin)"
    Config = Config

    def __init__(self, config):
        self.min_completed = config.min_completed
        self.completed_curves = []

    def assess(self, curve: LearningCurve) -> Verdict:
        epoch = curve.epochs_trained()
        known = [c.at_epoch(epoch) for c in self.completed_curves if c.at_epoch(epoch) is not None]
        if len(known) < self.min_completed:
            return Verdict.CONTINUE
        return Verdict.STOP if curve.best() < statistics.median(known) else Verdict.CONTINUE

    def completed(self, curve: LearningCurve) -> None:
        if curve.epochs_trained() != curve.epochs:
            raise ValueError(f"completed was told a curve of {curve.epochs_trained()} of {curve.epochs} epochs")
        self.completed_curves.append(curve)


register_assessor(MedianPy)
