"""Audio on disk to training batches: audio decoding, manifests, the tf.data pipeline and host-side augmentation.

May import: core.
"""
