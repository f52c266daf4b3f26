"""Sparse (OpenSearch neural sparse / SPLADE) fine-tuning: bi-encoder and doc-only (inference-free) modes.

``train.train_sparse`` and ``evaluate.evaluate_sparse`` are what the train and evaluate stages
call when ``model.type`` is ``sparse``; ``export`` writes the ML Commons zips.
"""
