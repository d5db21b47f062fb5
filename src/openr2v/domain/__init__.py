"""The domain: the model registry, the canonical request and task, the prompt grammar and billing.

Pure data and rules; nothing here imports the rest of openr2v.
"""
