"""Reads every array of a ckpt pytree checkpoint with h5py alone.

Usage: pytree_h5py_read.py <arrays.h5>

Follows the index dataset /_ckpt_index: each row gives an array's key path,
dtype and shape and, for a packed array, its element range in the dtype's
packed dataset /_ckpt_packed/<dtype>. Prints one JSON object
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
        assert f.attrs["ckpt_format"] == "ckpt.hdf5.v2"
        for row in f["_ckpt_index"][()]:
            key = row["key"].decode()
            dtype = row["dtype"].decode()
            shape = tuple(int(d) for d in row["shape"][: row["ndim"]])
            if row["packed"]:
                dataset = f["_ckpt_packed/" + dtype]
                start = int(row["offset"])
                stop = start + int(row["count"])
                array = dataset[start:stop].reshape(shape)
            else:
                # A large array lives at its own key path.
                dataset = f[key]
                array = np.asarray(dataset[()])
            assert dataset.attrs["ckpt_dtype"] == dtype, (key, dtype)
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
