"""Segmentation: scale the features, tune and fit each method, compare, pick one, describe it."""
