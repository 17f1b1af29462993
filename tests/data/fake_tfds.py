"""A tiny prepared tfds dataset (array_record), as `tfds build` would write
it, without TensorFlow or a download: the tests' stand-in for MNIST,
binarized MNIST and other 28x28 grayscale image sets."""

from __future__ import annotations

import io
import os

import numpy as np


def write_fake_prepared(data_dir, name: str, sizes: dict[str, int],
                        binary: bool = False
                        ) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
  """Writes `sizes[split]` random 28x28x1 images per split of tfds' `name`.

  Images are uint8 in 0..255 (0/1 when `binary`); a `label` feature, when
  the builder has one, gets `index % 10`. Returns {split: (images, labels
  or None)}.
  """
  import PIL.Image
  import tensorflow_datasets as tfds
  from array_record.python.array_record_module import ArrayRecordWriter
  from tensorflow_datasets.core import naming, splits
  from tensorflow_datasets.proto import tf_example_pb2

  builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
  has_label = "label" in builder.info.features
  builder.data_path.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(0)
  written, infos = {}, []
  for split, size in sizes.items():
    images = rng.integers(0, 2 if binary else 256, (size, 28, 28, 1),
                          dtype=np.uint8)
    labels = np.arange(size) % 10 if has_label else None
    template = naming.ShardedFileTemplate(
        data_dir=builder.data_path, dataset_name=name, split=split,
        filetype_suffix="array_record")
    path = os.fspath(template.sharded_filepath(shard_index=0, num_shards=1))
    writer = ArrayRecordWriter(path, "group_size:1")
    for i, image in enumerate(images):
      png = io.BytesIO()
      PIL.Image.fromarray(image[..., 0]).save(png, format="PNG")
      example = tf_example_pb2.Example()
      example.features.feature["image"].bytes_list.value.append(png.getvalue())
      if has_label:
        example.features.feature["label"].int64_list.value.append(
            int(labels[i]))
      writer.write(example.SerializeToString())
    writer.close()
    infos.append(splits.SplitInfo(name=split, shard_lengths=[size],
                                  num_bytes=os.path.getsize(path),
                                  filename_template=template))
    written[split] = (images, labels)
  builder.info.set_splits(splits.SplitDict(infos))
  builder.info.write_to_directory(builder.data_path)
  return written
