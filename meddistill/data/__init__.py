"""Datasets: loaders for every source (npz, MedMNIST, image/DICOM folders and zips), DICOM reading and
de-identification, the stored-dataset area, and the tensors the models see.

``load_dataset(source)`` is the one entry point.
"""

from meddistill.data.dataset import SPLITS, ArraySplit, FileSplit, MedDataset, Split
from meddistill.data.loader import load_dataset

__all__ = ["SPLITS", "ArraySplit", "FileSplit", "MedDataset", "Split", "load_dataset"]
