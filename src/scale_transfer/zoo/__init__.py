"""Public model zoos as tidy data: timm's ImageNet results and the JFT scaling benchmark.

Two loaders turn public result tables into the tidy frame of :mod:`scale_transfer.data`:

:func:`load_timm`
    pytorch-image-models (timm) ``results/`` folder: ImageNet-1k top-1 as the upstream
    accuracy, five shifted test sets as downstream tasks, one model per released weight and
    input resolution.
:func:`load_scaling_benchmark`
    ``benchmark.vision.csv`` of Alabdulmohsin, Neyshabur and Zhai (2022): few-shot error of
    JFT-pretrained ViT, BiT and MLP-Mixer checkpoints during pre-training; every
    (architecture, seen examples) checkpoint is a model.

Both return a :class:`ZooData`: the validated tidy frame and a table of what did not join
and why. Both read the files from any folder or path a user gives; the defaults are the
project's shared copies (``../shared/data/...`` from the working directory), which the
environment variables ``SCALE_TRANSFER_TIMM`` and ``SCALE_TRANSFER_BENCHMARK`` override.
:func:`load_dataset` gives one name to any data set: a tidy file, a zoo's folder or file,
``timm``, ``benchmark`` or ``simulated``.
"""

from scale_transfer.zoo.benchmark import BENCHMARK_ENV, load_scaling_benchmark
from scale_transfer.zoo.common import ZooData
from scale_transfer.zoo.dataset import is_benchmark_file, load_dataset
from scale_transfer.zoo.timm import TIMM_ENV, TIMM_TASKS, load_timm

__all__ = [
    "BENCHMARK_ENV",
    "TIMM_ENV",
    "TIMM_TASKS",
    "ZooData",
    "is_benchmark_file",
    "load_dataset",
    "load_scaling_benchmark",
    "load_timm",
]
