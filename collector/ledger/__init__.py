"""The ledger: messages, readings, events, chains and sequence gaps; the storage port and its
adapter.
"""
