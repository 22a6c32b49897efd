"""One worker of the two-process MultiWorkerMirroredStrategy test (TF_CONFIG
set by the test). Trains a few steps, then saves its final weights."""
import sys

import numpy as np
import tensorflow as tf

from simclr_controlled import datasets, train
from simclr_controlled.config import Config


def main(model_dir: str, out: str) -> None:
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    config = Config(model_dir=model_dir, dataset="hierarchy", branching=(4, 4, 4), mask_size=16,
                    crop_size=12, model="lenet", augment="crop", temperature=0.5,
                    train_batch_size=16, train_epochs=1, train_steps=4, learning_rate=1e-3,
                    steps_per_loop=2, checkpoint_epochs=1)
    data = datasets.get_dataset("hierarchy", seed=0, **config.dataset_params())
    result = train.train(config, data, strategy=strategy, log=print)
    # This worker's own copy of the weights (not the chief's checkpoint).
    np.savez(out, **{f"w{i}": v.numpy() for i, v in enumerate(result["model"].weights)})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
