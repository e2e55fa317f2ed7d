"""The network and its files: DS2Model, its layers (features, convolution, recurrence, in-graph augmentation), optimizer, checkpoints, batch inference.

May import: core, data.
"""
