"""Foundations every layer may use: errors, file IO, the alphabet, the config, frame arithmetic, locks, interruption, distribution strategy, fault points, error rates.

May import: nothing else in ds2_keras.
"""
