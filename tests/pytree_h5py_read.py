"""Reads every array of a ckpt pytree checkpoint with h5py alone.

Usage: pytree_h5py_read.py <arrays.h5>

Follows the index dataset /_ckpt_index: each row names the dataset holding
an array and, for packed arrays, the element range. Prints one JSON object
per array: key, numpy dtype, shape, the ckpt_dtype attribute and the
elements' bytes in hex. Exits non-zero when something does not match the
documented layout.
"""
import json
import sys

import h5py
import numpy as np


def main(path):
    with h5py.File(path, "r") as f:
        assert f.attrs["ckpt_format"] == "ckpt.hdf5.v1"
        for row in f["_ckpt_index"][()]:
            key = row["key"].decode()
            dataset_name = row["dataset"].decode()
            shape = tuple(int(d) for d in row["shape"][: row["ndim"]])
            dataset = f[dataset_name]
            if dataset_name.startswith("/_ckpt_packed/"):
                start = int(row["offset"])
                stop = start + int(row["count"])
                array = dataset[start:stop].reshape(shape)
            else:
                # A large array lives at its own key path.
                assert f[key].id == dataset.id, (key, dataset_name)
                array = dataset[()]
                array = np.asarray(array)
            assert array.shape == shape, (key, array.shape, shape)
            print(json.dumps({
                "key": key,
                "dtype": str(array.dtype),
                "shape": list(array.shape),
                "ckpt_dtype": dataset.attrs["ckpt_dtype"],
                "hex": array.tobytes().hex(),
            }))


if __name__ == "__main__":
    main(sys.argv[1])
