"""Batches: the model, CSV import, storage, the energy service and its JSON figures, the accounting
period, the CLI client.
"""
